/** Turning API rows into chart series, and the live window of the overview. */

export type Point = [number, number];
export type Row = Record<string, unknown>;

/** Epoch ms of an API time (ISO 8601 text or epoch ms); NaN when unreadable. */
export function toMs(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') return Date.parse(value);
  return NaN;
}

/** `[time, value]` points of rows, oldest first; rows without a number are left out. */
export function rowsToPoints(rows: Row[], timeField: string, valueField: string): Point[] {
  const out: Point[] = [];
  for (const r of rows) {
    const t = toMs(r[timeField]);
    const v = r[valueField];
    if (Number.isFinite(t) && typeof v === 'number' && Number.isFinite(v)) out.push([t, v]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** Points per entity (`entity_id` → points), for one line per entity. */
export function seriesByEntity(rows: Row[], idField: string, timeField: string,
  valueField: string): Map<string, Point[]> {
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const id = String(r[idField]);
    const g = groups.get(id);
    if (g) g.push(r); else groups.set(id, [r]);
  }
  const out = new Map<string, Point[]>();
  for (const id of [...groups.keys()].sort()) {
    out.set(id, rowsToPoints(groups.get(id)!, timeField, valueField));
  }
  return out;
}

/**
 * The system load: Σ of the regions' load per 15-minute point, kept per region so that a
 * live update of one region replaces its part instead of adding it twice.
 */
export class SystemLoad {
  private readonly parts = new Map<number, Map<string, number>>();

  /** Set one region's load at `t`; returns the new total at `t`. */
  set(t: number, region: string, kw: number): number {
    let part = this.parts.get(t);
    if (!part) {
      part = new Map();
      this.parts.set(t, part);
    }
    part.set(region, kw);
    return this.total(t);
  }

  /** The total at `t` (0 when nothing is known). */
  total(t: number): number {
    let sum = 0;
    for (const v of this.parts.get(t)?.values() ?? []) sum += v;
    return sum;
  }

  /** Every point, oldest first. */
  points(): Point[] {
    return [...this.parts.keys()].sort((a, b) => a - b).map((t) => [t, this.total(t)]);
  }

  /** Forget points older than `t` (the bounded window). */
  dropBefore(t: number): void {
    for (const k of [...this.parts.keys()]) if (k < t) this.parts.delete(k);
  }
}

/**
 * A live point into a bounded, time-ordered window: a new time is appended (or
 * inserted in order when late), a known time replaced; points older than
 * `windowMs` before the newest are dropped, and at most `maxPoints` kept. Returns
 * whether the point changed the window (a duplicate does not).
 */
export function upsertPoint(points: Point[], p: Point, windowMs: number, maxPoints: number): boolean {
  const [t, v] = p;
  let i = points.length;
  while (i > 0 && points[i - 1][0] > t) i--;
  if (i > 0 && points[i - 1][0] === t) {
    if (points[i - 1][1] === v) return false;
    points[i - 1] = [t, v];
  } else {
    const newest = points.length ? points[points.length - 1][0] : t;
    if (t < newest - windowMs) return false; // older than the window: not shown
    points.splice(i, 0, [t, v]);
  }
  const limit = points[points.length - 1][0] - windowMs;
  let drop = 0;
  while (drop < points.length && points[drop][0] < limit) drop++;
  drop = Math.max(drop, points.length - maxPoints);
  if (drop > 0) points.splice(0, drop);
  return true;
}

/** Days with data of daily rows: `[day, value]`, e.g. voltage qualification %. */
export function ratioPoints(rows: Row[], timeField: string, num: string, den: string): Point[] {
  const out: Point[] = [];
  for (const r of rows) {
    const n = r[num];
    const d = r[den];
    const t = toMs(r[timeField]);
    if (typeof n === 'number' && typeof d === 'number' && d > 0 && Number.isFinite(t)) {
      out.push([t, Math.round((10000 * n) / d) / 100]);
    }
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** The window `[start, end)` of the last `hours` ending after `lastMs` (ISO strings). */
export function windowEnding(lastMs: number | null, hours: number, now = Date.now()): { start: string; end: string } {
  const end = (lastMs ?? now) + 15 * 60 * 1000;
  return { start: new Date(end - hours * 3600 * 1000).toISOString(), end: new Date(end).toISOString() };
}
