/**
 * The one ETag builder of every route that serves a view (`/endpoints`, `/v1/services`,
 * `/v1/services/{namespace}/{name}`). A tag is made from a generation that moves on every change
 * any part of the body depends on, and a per-process epoch: bodies carry `lastUpdated` (when the
 * view was made), which differs between processes, so tags must differ between processes too.
 *
 * @module
 */

/** Differs per process: two sidecars (or one restarted) never hand out the same tag. */
export const PROCESS_EPOCH: string = crypto.randomUUID().slice(0, 8);

/** A strong ETag for the body made from `generation` (and, with the same generation, `variant`:
 * e.g. the query that shaped it). */
export function etag(generation: string | number, variant?: string): string {
  return variant === undefined
    ? `"${PROCESS_EPOCH}.${generation}"`
    : `"${PROCESS_EPOCH}.${generation}.${fnv1a(variant)}"`;
}

/** 32-bit FNV-1a of a string, hex: tells variants apart inside an ETag. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16);
}
