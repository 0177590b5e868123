/** Data shaping of the equipment images page: filters → query, rows → table rows, heat map → overlay cells. */
import type { Operations, Prediction } from '../api/schema';
import { fmtNum, fmtTime } from './format';

export type ImageQuery = Operations['/api/v1/images']['get']['query'];
export type AnomalyQuery = Operations['/api/v1/image-anomalies']['get']['query'];

/** What the filter form holds (empty string: no filter). */
export interface ImageFilters {
  asset_id: string;
  asset_type: '' | NonNullable<ImageQuery['asset_type']>;
  region_id: string;
  substation_id: string;
  camera: '' | NonNullable<ImageQuery['camera']>;
  label: '' | NonNullable<ImageQuery['label']>;
  /** Captured at or after / before (ISO 8601 or a date picker's `YYYY-MM-DD`). */
  start: string;
  end: string;
}

export const NO_FILTERS: ImageFilters = {
  asset_id: '', asset_type: '', region_id: '', substation_id: '', camera: '', label: '', start: '', end: '',
};

export const ASSET_TYPES = ['transformer', 'substation', 'feeder', 'ess'] as const;
export const CAMERAS = ['visible', 'infrared'] as const;
export const LABELS = ['normal', 'crack', 'flashover', 'rust', 'oil_leak', 'missing_part', 'hot_spot'] as const;

/** A date picker's day or an ISO time: the ISO time the API reads; '' stays '' (no bound). */
export function isoBound(v: string): string {
  const s = v.trim();
  if (!s) return '';
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return `${s}T00:00:00Z`;
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new Error(`not a date: ${s}`);
  return new Date(t).toISOString();
}

/**
 * The query of one page of `GET /images`: the filters set (trimmed, blank ones left out),
 * `limit` the page size, `offset` where page `page` (1-based) starts.
 */
export function imageQuery(f: ImageFilters, page: number, pageSize: number): ImageQuery {
  if (!Number.isInteger(page) || page < 1) throw new Error(`page must be 1 or more, not ${page}`);
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new Error(`page size must be 1 or more, not ${pageSize}`);
  const q: ImageQuery = { limit: pageSize, offset: (page - 1) * pageSize };
  const text = (v: string) => v.trim() || undefined;
  if (text(f.asset_id)) q.asset_id = text(f.asset_id);
  if (f.asset_type) q.asset_type = f.asset_type;
  if (text(f.region_id)) q.region_id = text(f.region_id);
  if (text(f.substation_id)) q.substation_id = text(f.substation_id);
  if (f.camera) q.camera = f.camera;
  if (f.label) q.label = f.label;
  if (isoBound(f.start)) q.start = isoBound(f.start);
  if (isoBound(f.end)) q.end = isoBound(f.end);
  if (q.start && q.end && Date.parse(q.start) >= Date.parse(q.end)) {
    throw new Error('the start of the capture window must be before its end');
  }
  return q;
}

/** The query of one page of the defects (`GET /image-anomalies?defect=true`). */
export function defectQuery(page: number, pageSize: number, modelKind: AnomalyQuery['model_kind'] = null): AnomalyQuery {
  const { limit, offset } = imageQuery(NO_FILTERS, page, pageSize);
  const q: AnomalyQuery = { defect: true, limit, offset };
  if (modelKind) q.model_kind = modelKind;
  return q;
}

/** One image of the grid. */
export interface ImageRow {
  image_id: string;
  asset: string;
  region: string;
  camera: string;
  label: string;
  captured: string;
  size: string;
}

const str = (v: unknown, none = '—') => (v === null || v === undefined || v === '' ? none : String(v));

/** Index rows (`ImagePage.rows`) → rows of the grid; rows without an id are dropped. */
export function imageRows(rows: readonly Record<string, unknown>[]): ImageRow[] {
  return rows.filter((r) => typeof r.image_id === 'string' && r.image_id).map((r) => ({
    image_id: String(r.image_id),
    asset: `${str(r.asset_type, '')} ${str(r.asset_id)}`.trim(),
    region: r.substation_id ? `${str(r.region_id)} / ${String(r.substation_id)}` : str(r.region_id),
    camera: str(r.camera),
    label: str(r.label, 'unlabelled'),
    captured: fmtTime(r.captured_ts),
    size: r.width && r.height ? `${String(r.width)}×${String(r.height)}` : '—',
  }));
}

/** The short name of a model kind (`image_autoencoder` → `autoencoder`). */
export function kindName(kind: unknown): string {
  return String(kind ?? '').replace(/^image_/, '') || '—';
}

/** One model result of an image (or one defect of the defects list). */
export interface ResultRow {
  key: string;
  image_id: string;
  model_id: string;
  kind: string;
  asset: string;
  captured: string;
  score: string;
  threshold: string;
  verdict: 'defect' | 'normal' | '—';
  /** Score over threshold (≥ 1: defect); null when either is missing. */
  ratio: number | null;
}

/** Result rows (`ResultPage.rows`, of `ads_image_anomaly`) → table rows. */
export function resultRows(rows: readonly Record<string, unknown>[]): ResultRow[] {
  return rows.map((r) => {
    const score = typeof r.score === 'number' ? r.score : null;
    const threshold = typeof r.threshold === 'number' ? r.threshold : null;
    return {
      key: `${str(r.image_id)}:${str(r.model_id)}`,
      image_id: str(r.image_id),
      model_id: str(r.model_id),
      kind: kindName(r.model_kind),
      asset: `${str(r.asset_type, '')} ${str(r.asset_id)}`.trim(),
      captured: fmtTime(r.captured_ts),
      score: score === null ? '—' : fmtNum(score, 3),
      threshold: threshold === null ? '—' : fmtNum(threshold, 3),
      verdict: r.defect === true ? 'defect' : r.defect === false ? 'normal' : '—',
      ratio: score !== null && threshold !== null && threshold > 0 ? score / threshold : null,
    };
  });
}

/** What the detail drawer shows of a prediction. */
export interface PredictionView {
  kind: string;
  model_id: string;
  score: string;
  threshold: string;
  defect: boolean;
  label: string;
}

export function predictionView(p: Prediction): PredictionView {
  return {
    kind: kindName(p.model_kind), model_id: p.model_id, score: fmtNum(p.score, 3),
    threshold: fmtNum(p.threshold, 3), defect: p.defect, label: p.label,
  };
}

/** One cell of the heat map overlay, in the drawn image's pixels. */
export interface OverlayCell {
  x: number;
  y: number;
  w: number;
  h: number;
  /** Opacity of the cell's red, from the value (0..1, clamped). */
  alpha: number;
}

/** Highest opacity of a cell (a value of 1): the image stays visible under the overlay. */
export const MAX_ALPHA = 0.6;

/**
 * The autoencoder's heat map (rows × columns of values 0..1, `heatmap_shape` = [rows,
 * columns]) as cells over an image drawn `width` × `height` pixels. Values outside 0..1
 * are clamped, not-numbers are 0; a map whose size disagrees with its shape is an error
 * (a truncated answer), not a silently wrong picture. Cells of value 0 are left out.
 */
export function heatmapCells(heatmap: readonly (readonly number[])[], shape: readonly number[] | null | undefined,
  width: number, height: number): OverlayCell[] {
  const rows = heatmap.length;
  const cols = rows ? heatmap[0].length : 0;
  if (shape && (shape.length < 2 || shape[0] !== rows || shape[1] !== cols)) {
    throw new Error(`heat map is ${rows}×${cols} but its shape says ${shape.join('×')}`);
  }
  if (heatmap.some((r) => r.length !== cols)) throw new Error('heat map rows differ in length');
  if (!rows || !cols || width <= 0 || height <= 0) return [];
  const w = width / cols;
  const h = height / rows;
  const cells: OverlayCell[] = [];
  heatmap.forEach((row, i) => row.forEach((v, j) => {
    const c = Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0;
    if (c > 0) cells.push({ x: j * w, y: i * h, w, h, alpha: c * MAX_ALPHA });
  }));
  return cells;
}

/** The largest value of a heat map (shown next to it), clamped to 0..1. */
export function heatmapPeak(heatmap: readonly (readonly number[])[]): number {
  let peak = 0;
  for (const row of heatmap) for (const v of row) if (Number.isFinite(v) && v > peak) peak = v;
  return Math.min(1, peak);
}

/**
 * Object URLs of fetched thumbnails, one per image, revoked together (on unmount or when a
 * new page replaces the grid) so a long session does not keep every image it showed.
 */
export class ObjectUrls {
  private urls = new Map<string, string>();

  constructor(private readonly create: (b: Blob) => string = (b) => URL.createObjectURL(b),
    private readonly revoke: (u: string) => void = (u) => URL.revokeObjectURL(u)) {}

  get(id: string): string | undefined {
    return this.urls.get(id);
  }

  /** The URL of `blob` for `id` (an earlier one of the same id is revoked). */
  set(id: string, blob: Blob): string {
    const old = this.urls.get(id);
    if (old) this.revoke(old);
    const url = this.create(blob);
    this.urls.set(id, url);
    return url;
  }

  /** Revoke every URL but those of `keep`. */
  retain(keep: Iterable<string>): void {
    const k = new Set(keep);
    for (const [id, url] of this.urls) {
      if (!k.has(id)) {
        this.revoke(url);
        this.urls.delete(id);
      }
    }
  }

  get size(): number {
    return this.urls.size;
  }

  revokeAll(): void {
    this.retain([]);
  }
}
