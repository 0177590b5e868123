import type { ErrorBody } from '../api/schema';

/** An API answer that was not a success, with a message a person can read. */
export class ApiError extends Error {
  readonly status: number;
  readonly retryAfterS: number | null;

  constructor(status: number, message: string, retryAfterS: number | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.retryAfterS = retryAfterS;
  }
}

const GENERIC: Record<number, string> = {
  400: 'The request could not be read',
  401: 'Your session has ended: sign in again',
  403: 'Your role or regions do not allow this',
  404: 'Not found',
  409: 'Conflict with the current state',
  413: 'The request is too large',
  422: 'Invalid input',
  429: 'Too many requests: try again shortly',
  502: 'A service behind the API failed',
  503: 'A service is unavailable: try again shortly',
  504: 'A service did not answer in time',
};

function isErrorBody(body: unknown): body is ErrorBody {
  return typeof body === 'object' && body !== null && 'detail' in body;
}

/**
 * The readable message of an error answer: the API's `detail` (one schema for every
 * error), with each field problem of a 422; a generic sentence per status otherwise
 * (an HTML error page of a proxy, an empty body).
 */
export function errorMessage(status: number, body: unknown, retryAfter?: string | null): string {
  let text = '';
  if (isErrorBody(body)) {
    const detail = body.detail as unknown;
    if (typeof detail === 'string') {
      text = detail;
    } else if (Array.isArray(detail)) {
      // FastAPI's default 422 shape (services that do not use the API's schema)
      text = detail
        .map((d: { loc?: unknown[]; msg?: string }) => `${(d.loc ?? []).slice(1).join('.')}: ${d.msg ?? ''}`)
        .join('; ');
    }
    const items = body.errors ?? [];
    const extra = items
      .map((e) => `${e.loc.filter((p) => p !== 'body' && p !== 'query' && p !== 'path').join('.')}: ${e.msg}`)
      .filter((s) => !text.includes(s));
    if (extra.length) text = text ? `${text} (${extra.join('; ')})` : extra.join('; ');
  }
  if (!text) text = GENERIC[status] ?? `Request failed (HTTP ${status})`;
  if (retryAfter && (status === 429 || status === 503)) text += ` — retry in ${retryAfter} s`;
  return `${text} [HTTP ${status}]`;
}

/** The message of anything thrown (network failure, ApiError, a bug). */
export function describe(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof TypeError) return `The API cannot be reached (${err.message})`;
  if (err instanceof Error) return err.message;
  return String(err);
}
