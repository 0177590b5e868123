/**
 * Reconnection delays of the event stream: exponential from `baseMs`, capped at
 * `maxMs`, with up to `jitter` of the delay subtracted at random so that many
 * dashboards do not reconnect in step after an API restart.
 */
export function backoffDelay(attempt: number, baseMs = 1000, maxMs = 30000, jitter = 0.2,
  random: () => number = Math.random): number {
  const raw = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt, 30)));
  return Math.round(raw * (1 - jitter * random()));
}

/** The schedule of the first `n` attempts without jitter (shown in docs and tests). */
export function backoffSchedule(n: number, baseMs = 1000, maxMs = 30000): number[] {
  return Array.from({ length: n }, (_, i) => backoffDelay(i, baseMs, maxMs, 0));
}
