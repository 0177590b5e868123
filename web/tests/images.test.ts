import { describe, expect, it } from 'vitest';
import { buildUrl } from '../src/api/client';
import {
  MAX_ALPHA, NO_FILTERS, ObjectUrls, defectQuery, heatmapCells, heatmapPeak, imageQuery, imageRows, isoBound,
  kindName, predictionView, resultRows,
} from '../src/lib/images';

describe('image filters → query', () => {
  it('leaves blank filters out and pages by offset', () => {
    expect(imageQuery(NO_FILTERS, 1, 24)).toEqual({ limit: 24, offset: 0 });
    expect(imageQuery(NO_FILTERS, 3, 24)).toEqual({ limit: 24, offset: 48 });
  });

  it('trims text, keeps choices and turns days into ISO bounds', () => {
    const q = imageQuery({ ...NO_FILTERS, asset_id: '  TX-001 ', asset_type: 'transformer', region_id: ' ',
      camera: 'infrared', label: 'hot_spot', start: '2026-03-01', end: '2026-03-02' }, 2, 10);
    expect(q).toEqual({ limit: 10, offset: 10, asset_id: 'TX-001', asset_type: 'transformer', camera: 'infrared',
      label: 'hot_spot', start: '2026-03-01T00:00:00Z', end: '2026-03-02T00:00:00Z' });
    expect(buildUrl('/api/v1/images', undefined, q as Record<string, unknown>)).toBe(
      '/api/v1/images?limit=10&offset=10&asset_id=TX-001&asset_type=transformer&camera=infrared&label=hot_spot'
      + '&start=2026-03-01T00%3A00%3A00Z&end=2026-03-02T00%3A00%3A00Z');
  });

  it('refuses bad pages, bad dates and an empty window', () => {
    expect(() => imageQuery(NO_FILTERS, 0, 24)).toThrow(/page/);
    expect(() => imageQuery(NO_FILTERS, 1, 0)).toThrow(/page size/);
    expect(() => imageQuery({ ...NO_FILTERS, start: 'yesterday' }, 1, 24)).toThrow(/not a date/);
    expect(() => imageQuery({ ...NO_FILTERS, start: '2026-03-02', end: '2026-03-01' }, 1, 24)).toThrow(/before its end/);
    expect(isoBound('2026-03-01T12:00:00+02:00')).toBe('2026-03-01T10:00:00.000Z');
  });

  it('asks only for defects in the defects list', () => {
    expect(defectQuery(2, 24)).toEqual({ defect: true, limit: 24, offset: 24 });
    expect(defectQuery(1, 5, 'image_autoencoder')).toEqual({ defect: true, limit: 5, offset: 0, model_kind: 'image_autoencoder' });
  });
});

describe('rows → table rows', () => {
  it('shapes index rows and drops rows without an id', () => {
    const rows = imageRows([
      { image_id: 'abc', asset_type: 'transformer', asset_id: 'TX-1', region_id: 'R1', substation_id: 'SS-1',
        camera: 'visible', label: null, captured_ts: '2026-03-01T10:15:00Z', width: 640, height: 480 },
      { image_id: '', asset_id: 'X' },
      { image_id: 'def', asset_id: 'ESS-2', region_id: 'R2', camera: 'infrared', label: 'hot_spot', captured_ts: null },
    ]);
    expect(rows).toEqual([
      { image_id: 'abc', asset: 'transformer TX-1', region: 'R1 / SS-1', camera: 'visible', label: 'unlabelled',
        captured: '2026-03-01 10:15Z', size: '640×480' },
      { image_id: 'def', asset: 'ESS-2', region: 'R2', camera: 'infrared', label: 'hot_spot', captured: '—', size: '—' },
    ]);
  });

  it('shapes model results with their verdict and margin', () => {
    const [a, b] = resultRows([
      { image_id: 'abc', model_id: 'm1', model_kind: 'image_classifier', asset_type: 'feeder', asset_id: 'F1',
        captured_ts: '2026-03-01T00:00:00Z', score: 0.9, threshold: 0.5, defect: true },
      { image_id: 'abc', model_id: 'm2', model_kind: 'image_autoencoder', asset_id: 'F1', score: null, threshold: 0.2 },
    ]);
    expect(a).toMatchObject({ key: 'abc:m1', kind: 'classifier', asset: 'feeder F1', score: '0.900', threshold: '0.500',
      verdict: 'defect', captured: '2026-03-01 00:00Z' });
    expect(a.ratio).toBeCloseTo(1.8);
    expect(b).toMatchObject({ kind: 'autoencoder', score: '—', verdict: '—', ratio: null });
    expect(kindName(undefined)).toBe('—');
  });

  it('shows a prediction', () => {
    expect(predictionView({ image_id: 'abc', model_id: 'm2', model_kind: 'image_autoencoder', score: 0.31234,
      threshold: 0.25, defect: true, label: 'defect' })).toEqual({ kind: 'autoencoder', model_id: 'm2', score: '0.312',
      threshold: '0.250', defect: true, label: 'defect' });
  });
});

describe('heat map → overlay cells', () => {
  it('maps cells onto the drawn image, clamping values and leaving zeros out', () => {
    const cells = heatmapCells([[0, 0.5], [1.4, Number.NaN]], [2, 2], 200, 100);
    expect(cells).toEqual([
      { x: 100, y: 0, w: 100, h: 50, alpha: 0.5 * MAX_ALPHA },
      { x: 0, y: 50, w: 100, h: 50, alpha: MAX_ALPHA },
    ]);
    expect(heatmapPeak([[0, 0.5], [1.4, Number.NaN]])).toBe(1);
    expect(heatmapPeak([[0.2, 0.7]])).toBe(0.7);
  });

  it('refuses a map that disagrees with its shape or is ragged', () => {
    expect(() => heatmapCells([[0.1, 0.2]], [2, 2], 10, 10)).toThrow(/1×2 but its shape says 2×2/);
    expect(() => heatmapCells([[0.1, 0.2], [0.3]], null, 10, 10)).toThrow(/differ/);
    expect(heatmapCells([], [0, 0], 10, 10)).toEqual([]);
    expect(heatmapCells([[0.5]], [1, 1], 0, 10)).toEqual([]);
  });
});

describe('thumbnail object URLs', () => {
  it('revokes what a new page no longer shows, and everything on unmount', () => {
    const revoked: string[] = [];
    let n = 0;
    const urls = new ObjectUrls(() => `blob:${++n}`, (u) => revoked.push(u));
    const blob = new Blob(['x']);
    expect(urls.set('a', blob)).toBe('blob:1');
    urls.set('b', blob);
    urls.set('a', blob); // a refetch replaces (and revokes) the old URL
    expect(revoked).toEqual(['blob:1']);
    urls.retain(['b']);
    expect(revoked).toEqual(['blob:1', 'blob:3']);
    expect(urls.get('b')).toBe('blob:2');
    urls.revokeAll();
    expect(urls.size).toBe(0);
    expect(revoked).toEqual(['blob:1', 'blob:3', 'blob:2']);
  });
});
