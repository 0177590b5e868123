/** Embed mode: `/embed/<view>?token=<JWT>` — one read-only view, no navigation. */

export const EMBED_VIEWS = ['load_curve', 'asset_health', 'overview'] as const;
export type EmbedView = (typeof EMBED_VIEWS)[number];

export interface EmbedClaims {
  view: string;
  params: Record<string, string>;
  regions: string[] | null;
  exp: number;
}

/** The (unverified) claims of an embed token: only to pick what to show; the API checks it. */
export function readClaims(token: string): EmbedClaims | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
    const c = JSON.parse(json) as Partial<EmbedClaims>;
    if (typeof c.view !== 'string' || typeof c.exp !== 'number') return null;
    return { view: c.view, params: c.params ?? {}, regions: c.regions ?? null, exp: c.exp };
  } catch {
    return null;
  }
}

/**
 * Why an embed URL cannot be shown (null: it can): the view must be one of
 * {@link EMBED_VIEWS} and the one the token names, with its parameters, not expired.
 */
export function embedProblem(view: string, claims: EmbedClaims | null, nowS = Date.now() / 1000): string | null {
  if (!claims) return 'This embed link has no valid token.';
  if (!(EMBED_VIEWS as readonly string[]).includes(view)) return `Unknown embedded view "${view}".`;
  if (claims.view !== view) return `This embed token is for the view "${claims.view}", not "${view}".`;
  if (claims.exp <= nowS) return 'This embed link has expired.';
  if (view === 'load_curve' && (!claims.params.entity_type || !claims.params.entity_id)) return 'The token names no entity.';
  if (view === 'asset_health' && (!claims.params.asset_type || !claims.params.asset_id)) return 'The token names no asset.';
  return null;
}
