/** The signed-in user (or the embed token): a small reactive store kept in localStorage. */
import { reactive } from 'vue';
import type { Me, Tokens } from '../api/schema';
import { ApiError, errorMessage } from '../lib/errors';

const KEY = 'gridlake.session';

interface Saved {
  access: string;
  refresh: string;
  me: Me | null;
}

function load(): Saved | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Saved) : null;
  } catch {
    return null;
  }
}

const state = reactive({
  saved: load() as Saved | null,
  /** Set in embed mode: the signed token of the URL, used instead of a sign-in. */
  embedToken: null as string | null,
  /** Why the user is on the sign-in page again (session expired). */
  notice: '' as string,
});

let refreshing: Promise<boolean> | null = null;
let onExpired: (() => void) | null = null;

function persist(): void {
  if (state.saved) localStorage.setItem(KEY, JSON.stringify(state.saved));
  else localStorage.removeItem(KEY);
}

async function postJson(path: string, body: unknown): Promise<globalThis.Response> {
  return fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
}

export const session = {
  state,
  get me(): Me | null {
    return state.saved?.me ?? null;
  },
  get permissions(): string[] {
    return state.saved?.me?.permissions ?? [];
  },
  get signedIn(): boolean {
    return !!state.saved || !!state.embedToken;
  },
  bearer(): string | null {
    return state.embedToken ?? state.saved?.access ?? null;
  },
  onExpired(fn: () => void): void {
    onExpired = fn;
  },
  /** Sign in; throws an {@link ApiError} with the API's message. */
  async login(username: string, password: string): Promise<void> {
    const resp = await postJson('/api/v1/auth/login', { username, password });
    const body = await resp.json().catch(() => null);
    if (!resp.ok) throw new ApiError(resp.status, errorMessage(resp.status, body, resp.headers.get('Retry-After')));
    const tokens = body as Tokens;
    state.saved = { access: tokens.access_token, refresh: tokens.refresh_token, me: null };
    state.notice = '';
    const me = await fetch('/api/v1/auth/me', { headers: { Authorization: `Bearer ${tokens.access_token}` } });
    if (!me.ok) throw new ApiError(me.status, errorMessage(me.status, await me.json().catch(() => null)));
    state.saved.me = (await me.json()) as Me;
    persist();
  },
  /** Exchange the refresh token (once for concurrent callers); false when it is refused. */
  refresh(): Promise<boolean> {
    if (state.embedToken || !state.saved) return Promise.resolve(false);
    if (!refreshing) {
      const saved = state.saved;
      refreshing = (async () => {
        try {
          const resp = await postJson('/api/v1/auth/refresh', { refresh_token: saved.refresh });
          if (!resp.ok) return false;
          const t = (await resp.json()) as Tokens;
          state.saved = { ...saved, access: t.access_token, refresh: t.refresh_token };
          persist();
          return true;
        } catch {
          return false;
        } finally {
          refreshing = null;
        }
      })();
    }
    return refreshing;
  },
  /** The session ended (refused token, failed refresh): back to the sign-in page. */
  expired(): void {
    if (state.embedToken) return;
    state.saved = null;
    state.notice = 'Your session has ended: sign in again.';
    persist();
    onExpired?.();
  },
  async logout(): Promise<void> {
    const saved = state.saved;
    state.saved = null;
    persist();
    if (saved) await postJson('/api/v1/auth/logout', { refresh_token: saved.refresh }).catch(() => undefined);
  },
  useEmbedToken(token: string): void {
    state.embedToken = token;
  },
};
