import { describe, expect, it } from 'vitest';
import { SystemLoad, ratioPoints, rowsToPoints, seriesByEntity, toMs, upsertPoint, windowEnding, type Point } from '../src/lib/series';

const T0 = Date.parse('2026-03-02T00:00:00Z');
const Q = 15 * 60 * 1000;

describe('rows to chart series', () => {
  it('reads ISO and epoch times, sorts, and leaves out rows without a number', () => {
    const rows = [
      { window_start: '2026-03-02T00:15:00Z', load_kw: 2 },
      { window_start: T0, load_kw: 1 },
      { window_start: '2026-03-02T00:30:00Z', load_kw: null },
      { window_start: 'not a time', load_kw: 5 },
    ];
    expect(rowsToPoints(rows, 'window_start', 'load_kw')).toEqual([[T0, 1], [T0 + Q, 2]]);
    expect(toMs('2026-03-02T00:00:00Z')).toBe(T0);
  });

  it('groups one line per entity in id order', () => {
    const rows = [
      { region_id: 'R2', day: T0, score_pct: 90 },
      { region_id: 'R1', day: T0 + 86400000, score_pct: 80 },
      { region_id: 'R1', day: T0, score_pct: 70 },
    ];
    const by = seriesByEntity(rows, 'region_id', 'day', 'score_pct');
    expect([...by.keys()]).toEqual(['R1', 'R2']);
    expect(by.get('R1')).toEqual([[T0, 70], [T0 + 86400000, 80]]);
  });

  it('computes voltage qualification as qualified / readings, skipping empty days', () => {
    const rows = [{ day: T0, qualified: 95, readings: 100 }, { day: T0 + 1, qualified: 0, readings: 0 }];
    expect(ratioPoints(rows, 'day', 'qualified', 'readings')).toEqual([[T0, 95]]);
  });
});

describe('system load', () => {
  it('sums regions per point and replaces a region updated again (never double counts)', () => {
    const s = new SystemLoad();
    s.set(T0, 'R1', 100);
    expect(s.set(T0, 'R2', 50)).toBe(150);
    expect(s.set(T0, 'R1', 120)).toBe(170);
    s.set(T0 + Q, 'R1', 10);
    expect(s.points()).toEqual([[T0, 170], [T0 + Q, 10]]);
    s.dropBefore(T0 + Q);
    expect(s.points()).toEqual([[T0 + Q, 10]]);
  });
});

describe('live points in a bounded window', () => {
  it('appends a new point, replaces a known one, ignores a duplicate', () => {
    const pts: Point[] = [[T0, 1], [T0 + Q, 2]];
    expect(upsertPoint(pts, [T0 + 2 * Q, 3], 86400000, 100)).toBe(true);
    expect(pts).toEqual([[T0, 1], [T0 + Q, 2], [T0 + 2 * Q, 3]]);
    expect(upsertPoint(pts, [T0 + Q, 5], 86400000, 100)).toBe(true);
    expect(pts[1]).toEqual([T0 + Q, 5]);
    expect(upsertPoint(pts, [T0 + Q, 5], 86400000, 100)).toBe(false);
  });

  it('inserts a late point in order', () => {
    const pts: Point[] = [[T0, 1], [T0 + 2 * Q, 3]];
    upsertPoint(pts, [T0 + Q, 2], 86400000, 100);
    expect(pts.map((p) => p[0])).toEqual([T0, T0 + Q, T0 + 2 * Q]);
  });

  it('drops points older than the window and keeps at most maxPoints (no growth over time)', () => {
    const pts: Point[] = [];
    for (let i = 0; i < 10000; i++) upsertPoint(pts, [T0 + i * Q, i], 24 * 3600 * 1000, 192);
    expect(pts.length).toBeLessThanOrEqual(97);
    expect(pts[pts.length - 1]).toEqual([T0 + 9999 * Q, 9999]);
    expect(pts[0][0]).toBeGreaterThanOrEqual(T0 + 9999 * Q - 24 * 3600 * 1000);
    const capped: Point[] = [];
    for (let i = 0; i < 50; i++) upsertPoint(capped, [T0 + i * Q, i], 1e12, 10);
    expect(capped.length).toBe(10);
    expect(capped[0][1]).toBe(40);
  });

  it('does not show a point older than the window', () => {
    const pts: Point[] = [[T0 + 100 * Q, 1]];
    expect(upsertPoint(pts, [T0, 9], 10 * Q, 100)).toBe(false);
    expect(pts.length).toBe(1);
  });
});

describe('windows', () => {
  it('ends one point after the newest data', () => {
    expect(windowEnding(T0, 24)).toEqual({ start: new Date(T0 + Q - 86400000).toISOString(), end: new Date(T0 + Q).toISOString() });
  });
});
