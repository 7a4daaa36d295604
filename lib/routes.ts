/**
 * HTTP routes, as plain `(req: Request) => Response` functions over the cache, testable
 * without a socket. The seed's routes are kept as they were (`/endpoints`,
 * `/endpoints/last_updated`, `/health`); `/livez` and `/readyz` are added for probes.
 * Handlers only read the cache's current views; they never call the API server.
 *
 * @module
 */
import type { EndpointCache, ServiceView } from "./cache.ts";
import { errorResponse, etagMatches, jsonResponse } from "./http_util.ts";

/** Options for {@linkcode createHandler}. */
export interface HandlerOptions {
  /** The Service `/endpoints` serves (the seed's single service): the first one configured. */
  primary: { namespace: string; name: string };
}

const ALLOWED = "GET, HEAD";

/** Builds the request handler for the sidecar's routes. */
export function createHandler(
  cache: EndpointCache,
  options: HandlerOptions,
): (req: Request) => Response {
  const { primary } = options;
  const notSynced = (): Response =>
    errorResponse(
      503,
      `not ready: no complete list of EndpointSlices yet for ${primary.namespace}/${primary.name}` +
        "; see the sidecar's log for why",
      { "Retry-After": "1" },
    );
  const routes: Record<string, (req: Request) => Response> = {
    "/health": () => text("ok"),
    "/livez": () => text("ok"),
    "/readyz": () =>
      cache.ready
        ? text("ok")
        : errorResponse(503, "not ready: waiting for the first complete list"),
    "/endpoints": (req) => {
      const view = cache.view(primary.namespace, primary.name);
      if (!view) return notSynced();
      return conditional(req, view, () => jsonResponse(view.v1Body), cache);
    },
    "/endpoints/last_updated": () => {
      const at = cache.contactAt(primary.namespace);
      if (!at) return notSynced();
      return jsonResponse({ lastUpdated: at.toISOString() });
    },
  };
  routes["/endpoints/"] = routes["/endpoints"]!;
  return (req: Request): Response => {
    const path = pathOf(req.url);
    const route = routes[path];
    if (!route) return errorResponse(404, `no route ${JSON.stringify(path)}; see the README`);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return errorResponse(405, `method ${req.method} not allowed on ${path}; use GET`, {
        Allow: ALLOWED,
      });
    }
    return route(req);
  };
}

function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const end = url.slice(start).search(/[?#]/);
  return end < 0 ? url.slice(start) : url.slice(start, start + end);
}

function text(body: string): Response {
  return new Response(body, { headers: { "Content-Type": "text/plain; charset=utf-8" } });
}

/** Adds the view's ETag, index and age headers, and answers a matching If-None-Match with 304. */
function conditional(
  req: Request,
  view: ServiceView,
  make: () => Response,
  cache: EndpointCache,
): Response {
  const etag = `"${view.namespace}/${view.name}@${view.resourceVersion}"`;
  const at = cache.contactAt(view.namespace);
  const headers: Record<string, string> = {
    ETag: etag,
    "X-Discovery-Index": String(view.index),
    "Cache-Control": "no-cache",
  };
  if (at) {
    headers["X-Discovery-Last-Updated"] = at.toISOString();
    headers["X-Discovery-Age-Seconds"] = String(Math.max(0, Math.floor((Date.now() - +at) / 1000)));
  }
  if (etagMatches(req.headers.get("If-None-Match"), etag)) {
    return new Response(null, { status: 304, headers });
  }
  const resp = make();
  for (const [k, v] of Object.entries(headers)) resp.headers.set(k, v);
  return resp;
}
