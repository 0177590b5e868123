/** The drill-down: region → substation → feeder → transformer → meter. */

export const LEVELS = ['region', 'substation', 'feeder', 'transformer', 'meter'] as const;
export type Level = (typeof LEVELS)[number];

export interface Crumb {
  level: Level;
  id: string;
}

/** The level below `level` (null under a meter). */
export function childLevel(level: Level): Level | null {
  const i = LEVELS.indexOf(level);
  return i >= 0 && i < LEVELS.length - 1 ? LEVELS[i + 1] : null;
}

/** The device-list filter naming the parent of `level`'s children. */
export function childFilter(crumb: Crumb): Record<string, string> {
  const child = childLevel(crumb.level);
  if (!child) return {};
  return { device_type: child, [`${crumb.level}_id`]: crumb.id };
}

/** The path in the URL: `region/R1/substation/SUB-01` ↔ crumbs. */
export function crumbsToPath(crumbs: Crumb[]): string {
  return crumbs.map((c) => `${c.level}/${encodeURIComponent(c.id)}`).join('/');
}

/**
 * Crumbs of a URL path; a path out of order (a feeder straight under a region) or
 * naming an unknown level is cut where it goes wrong, so a hand-edited URL still shows
 * the part that makes sense.
 */
export function pathToCrumbs(path: string | string[]): Crumb[] {
  const parts = (Array.isArray(path) ? path : path.split('/')).filter((p) => p !== '');
  const out: Crumb[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const level = parts[i] as Level;
    if (level !== LEVELS[out.length]) break;
    out.push({ level, id: decodeURIComponent(parts[i + 1]) });
  }
  return out;
}

/** Crumbs down to (and including) index `i`: clicking a breadcrumb goes back up. */
export function upTo(crumbs: Crumb[], i: number): Crumb[] {
  return crumbs.slice(0, Math.max(0, i + 1));
}
