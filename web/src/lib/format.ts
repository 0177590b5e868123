/** Display helpers. */
import { toMs } from './series';

export function fmtTime(v: unknown): string {
  const t = toMs(v);
  if (!Number.isFinite(t)) return '—';
  return new Date(t).toISOString().replace('T', ' ').slice(0, 16) + 'Z';
}

export function fmtDay(v: unknown): string {
  const t = toMs(v);
  return Number.isFinite(t) ? new Date(t).toISOString().slice(0, 10) : '—';
}

export function fmtNum(v: unknown, digits = 1): string {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '—';
}

/** A line chart option of time series (one line per name). */
export function lineOption(series: { name: string; data: [number, number][] }[], unit: string,
  extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    animation: false,
    tooltip: { trigger: 'axis' },
    legend: { type: 'scroll', top: 0 },
    grid: { left: 56, right: 16, top: 32, bottom: 28 },
    xAxis: { type: 'time' },
    yAxis: { type: 'value', name: unit, scale: true },
    series: series.map((s) => ({ type: 'line', name: s.name, data: s.data, showSymbol: false })),
    ...extra,
  };
}
