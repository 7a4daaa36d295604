/**
 * The Go service's three `net/http` ServeMux patterns (`/endpoints/`,
 * `/endpoints/last_updated/`, `/health/`): each matches its whole subtree and any method, the
 * longest match winning. The route table dispatches on them and the request metrics label by
 * them.
 *
 * @module
 */

/** The Go service's three routes. */
export type GoPattern = "/endpoints/" | "/endpoints/last_updated/" | "/health/";

/** The Go service's ServeMux pattern a path falls under, or undefined. Longest match wins. */
export function goPattern(path: string): GoPattern | undefined {
  if (path === "/endpoints/last_updated" || path.startsWith("/endpoints/last_updated/")) {
    return "/endpoints/last_updated/";
  }
  if (path === "/endpoints" || path.startsWith("/endpoints/")) return "/endpoints/";
  if (path === "/health" || path.startsWith("/health/")) return "/health/";
  return undefined;
}
