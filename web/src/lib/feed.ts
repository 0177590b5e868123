/**
 * The API's event stream (`GET /api/v1/feed`), read with fetch so that the Bearer token
 * travels in a header (EventSource cannot send one). A dropped stream is reopened with
 * {@link backoffDelay}; the state (`live`, `reconnecting`, `ended`) is reported so the
 * page can say so.
 */
import { backoffDelay } from './backoff';
import { SseParser } from './sse';

export type FeedState = 'connecting' | 'live' | 'reconnecting' | 'ended';

export interface FeedOptions {
  url: string;
  token: () => string | null;
  onEvent: (event: string, data: unknown) => void;
  onState: (state: FeedState, detail: string) => void;
  /** Called on a 401: the session ended; the stream is not reopened. */
  onUnauthorized?: () => void;
  baseMs?: number;
  maxMs?: number;
}

export class FeedClient {
  private abort: AbortController | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private attempt = 0;
  private stopped = false;

  constructor(private readonly opts: FeedOptions) {}

  start(): void {
    this.stopped = false;
    void this.open();
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
    if (this.timer) clearTimeout(this.timer);
  }

  private retry(detail: string, retryAfterS = 0): void {
    if (this.stopped) return;
    const wait = Math.max(retryAfterS * 1000,
      backoffDelay(this.attempt++, this.opts.baseMs ?? 1000, this.opts.maxMs ?? 30000));
    this.opts.onState('reconnecting', `${detail}; reconnecting in ${Math.round(wait / 1000)} s`);
    this.timer = setTimeout(() => void this.open(), wait);
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    this.abort = new AbortController();
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    const token = this.opts.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    let resp: Response;
    try {
      resp = await fetch(this.opts.url, { headers, signal: this.abort.signal, cache: 'no-store' });
    } catch (err) {
      if (!this.stopped) this.retry(`event stream unreachable (${(err as Error).message})`);
      return;
    }
    if (resp.status === 401) {
      this.opts.onState('ended', 'session ended');
      this.opts.onUnauthorized?.();
      return;
    }
    if (!resp.ok || !resp.body) {
      this.retry(`event stream refused (HTTP ${resp.status})`, Number(resp.headers.get('Retry-After')) || 0);
      return;
    }
    this.attempt = 0;
    this.opts.onState('live', 'connected');
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SseParser();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const ev of parser.push(value)) {
          let data: unknown = ev.data;
          try {
            data = JSON.parse(ev.data);
          } catch {
            /* not JSON: passed as text */
          }
          if (ev.event === 'status' && (data as { session?: string })?.session === 'ended') {
            this.opts.onState('ended', 'session ended');
            this.opts.onUnauthorized?.();
            this.stopped = true;
            return;
          }
          this.opts.onEvent(ev.event, data);
        }
      }
    } catch (err) {
      if (this.stopped) return;
      this.retry(`event stream lost (${(err as Error).message})`);
      return;
    }
    this.retry('event stream closed by the server');
  }
}
