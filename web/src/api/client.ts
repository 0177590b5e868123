/** The API client: base path, Bearer token, refresh on expiry, readable errors. */
import type { Operations } from './schema';
import { ApiError, errorMessage } from '../lib/errors';
import { session } from '../store/session';

/** The API's own paths (`/api/v1/...`) are served under the same origin (Nginx, Vite). */
export const API_BASE = '';

type Method = 'get' | 'post' | 'patch' | 'delete';
type Op<P extends keyof Operations, M extends Method> = M extends keyof Operations[P] ? Operations[P][M] : never;
type Field<T, K extends string> = T extends Record<K, infer V> ? V : undefined;

export interface CallOptions<P extends keyof Operations, M extends Method> {
  path?: Field<Op<P, M>, 'path'>;
  query?: Field<Op<P, M>, 'query'>;
  body?: Field<Op<P, M>, 'body'>;
  signal?: AbortSignal;
  /** Do not try a token refresh on 401 (the refresh call itself). */
  noRefresh?: boolean;
}

export type Response<P extends keyof Operations, M extends Method> = Field<Op<P, M>, 'response'>;

/** `/api/v1/x/{id}` with `{id}` filled in (encoded) and the query string appended. */
export function buildUrl(template: string, path?: Record<string, unknown>, query?: Record<string, unknown>): string {
  let url = template.replace(/\{(\w+)\}/g, (_, k: string) => {
    const v = path?.[k];
    if (v === undefined || v === null) throw new Error(`missing path parameter ${k}`);
    return encodeURIComponent(String(v));
  });
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => qs.append(k, String(x)));
    else qs.append(k, String(v));
  }
  const s = qs.toString();
  if (s) url += `?${s}`;
  return API_BASE + url;
}

async function readBody(resp: globalThis.Response): Promise<unknown> {
  const text = await resp.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** One typed call of the API. Throws {@link ApiError} with a readable message. */
export async function call<P extends keyof Operations, M extends Method>(
  method: M, template: P, opts: CallOptions<P, M> = {},
): Promise<Response<P, M>> {
  const url = buildUrl(template, opts.path as Record<string, unknown>, opts.query as Record<string, unknown>);
  const send = () => {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const token = session.bearer();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(url, {
      method: method.toUpperCase(), headers, signal: opts.signal,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  };
  let resp = await send();
  if (resp.status === 401 && !opts.noRefresh && (await session.refresh())) resp = await send();
  const body = await readBody(resp);
  if (!resp.ok) {
    if (resp.status === 401 && !opts.noRefresh) session.expired();
    throw new ApiError(resp.status, errorMessage(resp.status, body, resp.headers.get('Retry-After')),
      Number(resp.headers.get('Retry-After')) || null);
  }
  return body as Response<P, M>;
}

export const get = <P extends keyof Operations>(p: P, o?: CallOptions<P, 'get'>) => call('get', p, o);
export const post = <P extends keyof Operations>(p: P, o?: CallOptions<P, 'post'>) => call('post', p, o);
export const patch = <P extends keyof Operations>(p: P, o?: CallOptions<P, 'patch'>) => call('patch', p, o);
export const del = <P extends keyof Operations>(p: P, o?: CallOptions<P, 'delete'>) => call('delete', p, o);

/**
 * The bytes of a binary endpoint (an image's content) with the session's Bearer token —
 * which an `<img src>` cannot send — as a Blob for an object URL. Same refresh and errors
 * as {@link call}.
 */
export async function getBlob(url: string, signal?: AbortSignal): Promise<Blob> {
  const send = () => {
    const token = session.bearer();
    return fetch(API_BASE + url, { headers: token ? { Authorization: `Bearer ${token}` } : {}, signal });
  };
  let resp = await send();
  if (resp.status === 401 && (await session.refresh())) resp = await send();
  if (!resp.ok) {
    if (resp.status === 401) session.expired();
    throw new ApiError(resp.status, errorMessage(resp.status, await readBody(resp), resp.headers.get('Retry-After')),
      Number(resp.headers.get('Retry-After')) || null);
  }
  return resp.blob();
}
