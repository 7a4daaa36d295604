/**
 * HTTP routes, as plain `(req, info?) => Response` functions over the cache, testable without a
 * socket. The Go service's three ServeMux patterns (`/endpoints/`, `/endpoints/last_updated/`,
 * `/health/`) keep Go's semantics: each matches its whole subtree and any method; the bare
 * forms (`/endpoints`, `/health`, ...) are served directly instead of Go's 301, so `curl`
 * without `-L` gets the answer. `/livez`, `/readyz`, `/metrics` and the /v1 API are added,
 * GET and HEAD only. Clients outside the Pod get only the open routes (lib/access.ts).
 * Handlers only read the cache's current views; they never call the API server.
 *
 * @module
 */
import { forbidden, isLoopback, isOpenPath } from "./access.ts";
import { type ApiOptions, createApi, freshness } from "./api.ts";
import type { EndpointCache } from "./cache.ts";
import { etag as etagOf } from "./etag.ts";
import { HealthRegistry } from "./health.ts";
import { errorResponse, etagMatches, jsonResponse } from "./http_util.ts";
import type { Metrics } from "./metrics.ts";

/** Options for {@linkcode createHandler}. */
export interface HandlerOptions extends Partial<ApiOptions> {
  /** The Service `/endpoints` serves (the seed's single service): the first one named. */
  primary?: { namespace: string; name: string };
  /** /readyz turns 503 once a watch has been broken this long (ms); 0 or unset: never. */
  readyMaxStalenessMs?: number;
  /** Where request counts and latencies go; also served on /metrics. */
  metrics?: Metrics;
  /** Serve the endpoint data and /v1 to clients outside the Pod too. Default false. */
  allowRemoteData?: boolean;
  /** The clock ages are measured with. Default `Date.now`. */
  now?: () => number;
}

/** What Deno.serve tells a handler about the connection; absent for in-process calls. */
export type ClientInfo = { remoteAddr: Deno.Addr };

/** A request handler of the sidecar. */
export type Handler = (req: Request, info?: ClientInfo) => Response | Promise<Response>;

/** The Go service's ServeMux pattern a path falls under, or undefined. Longest match wins. */
export function seedPattern(path: string): SeedPattern | undefined {
  if (path === "/endpoints/last_updated" || path.startsWith("/endpoints/last_updated/")) {
    return "/endpoints/last_updated/";
  }
  if (path === "/endpoints" || path.startsWith("/endpoints/")) return "/endpoints/";
  if (path === "/health" || path.startsWith("/health/")) return "/health/";
  return undefined;
}

/** The Go service's three routes. */
export type SeedPattern = "/endpoints/" | "/endpoints/last_updated/" | "/health/";

/**
 * A time in the Go service's layout `2006-01-02T15:04:05-0700`, in UTC: whole seconds
 * (truncated, as Go's Format does) and `+0000`, e.g. `2026-11-27T13:25:46+0000`.
 */
export function goTimestamp(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19) + "+0000";
}

const ALLOWED = "GET, HEAD";

/** Builds the request handler for the sidecar's routes. */
export function createHandler(cache: EndpointCache, options: HandlerOptions = {}): Handler {
  const { primary, metrics } = options;
  const now = options.now ?? Date.now;
  const health = options.health ?? new HealthRegistry();
  const api = createApi(cache, {
    health,
    self: options.self ?? {},
    maxWatchers: options.maxWatchers ?? 1000,
    watchers: options.watchers ?? { sse: 0, blocking: 0 },
    signal: options.signal,
    log: options.log,
  });
  const notSynced = (what: string): Response =>
    errorResponse(
      503,
      `not ready: no complete list of EndpointSlices yet for ${what}; see the sidecar's log for why`,
      { "Retry-After": "1" },
    );
  const noPrimary = () =>
    errorResponse(404, "/endpoints serves a Service named with --service-name; use /v1/services");
  const seed: Record<SeedPattern, (req: Request) => Response> = {
    "/health/": () => text("ok"),
    "/endpoints/": (req) => {
      if (!primary) return noPrimary();
      const view = cache.view(primary.namespace, primary.name);
      if (!view) return notSynced(`${primary.namespace}/${primary.name}`);
      const etag = etagOf(view.generation);
      const headers = freshness(health, view.namespace, view.index, etag);
      if (etagMatches(req.headers.get("If-None-Match"), etag)) {
        return new Response(null, { status: 304, headers });
      }
      return jsonResponse(view.v1Body, { headers });
    },
    "/endpoints/last_updated/": () => {
      if (!primary) return noPrimary();
      const at = health.namespace(primary.namespace)?.knownCurrentAt;
      if (at === undefined) return notSynced(`${primary.namespace}/${primary.name}`);
      // Byte for byte what the Go service wrote, one space after the colon.
      return jsonResponse(`{"lastUpdated": "${goTimestamp(at)}"}`, {
        headers: {
          "Cache-Control": "no-cache",
          "X-Discovery-Last-Updated": new Date(at).toISOString(),
          "X-Discovery-Age-Seconds": String(Math.max(0, Math.floor((now() - at) / 1000))),
        },
      });
    },
  };
  const routes: Record<string, (req: Request) => Response> = {
    "/livez": () => text("ok"),
    "/readyz": () => readyz(cache, health, options.readyMaxStalenessMs ?? 0),
    "/metrics": () =>
      new Response(metrics?.render() ?? "", {
        headers: { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" },
      }),
  };
  const allowRemote = options.allowRemoteData ?? false;
  const handle = (req: Request, path: string, info?: ClientInfo): Response | Promise<Response> => {
    const client = info?.remoteAddr;
    if (
      !allowRemote && client?.transport === "tcp" && !isLoopback(client.hostname) &&
      !isOpenPath(path)
    ) {
      return forbidden(path, client.hostname);
    }
    const pattern = seedPattern(path);
    // Go's ServeMux hands every method to the handler; the seed's handlers ignored it.
    if (pattern) return seed[pattern](req);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return errorResponse(405, `method ${req.method} not allowed on ${path}; use GET`, {
        Allow: ALLOWED,
      });
    }
    const route = routes[path];
    if (route) return route(req);
    return api(req, path) ??
      errorResponse(404, `no route ${JSON.stringify(path)}; see the README`);
  };
  if (!metrics) return (req, info) => handle(req, pathOf(req.url), info);
  return (req, info) => {
    const started = performance.now();
    const path = pathOf(req.url);
    const record = (resp: Response): Response => {
      const route = routeLabel(path);
      metrics.inc("kpd_http_requests_total", { route, code: String(resp.status) });
      metrics.observe(
        "kpd_http_request_duration_seconds",
        { route },
        (performance.now() - started) / 1000,
      );
      return resp;
    };
    // Only the blocking routes are asynchronous; the rest stay off the promise machinery.
    const resp = handle(req, path, info);
    return resp instanceof Promise ? resp.then(record) : record(resp);
  };
}

function readyz(cache: EndpointCache, health: HealthRegistry, maxStalenessMs: number): Response {
  if (!cache.ready) return errorResponse(503, "not ready: waiting for the first complete list");
  if (maxStalenessMs > 0) {
    for (const h of health.all()) {
      if (h.brokenSince !== undefined && Date.now() - h.brokenSince > maxStalenessMs) {
        return errorResponse(
          503,
          `stale: the watch of namespace ${h.namespace} has been broken since ` +
            `${new Date(h.brokenSince).toISOString()} (${h.lastError}); ` +
            "the last good view is still served",
        );
      }
    }
  }
  return text("ok");
}

/** The route pattern of a path, for metric labels (bounded cardinality). */
function routeLabel(path: string): string {
  const pattern = seedPattern(path);
  if (pattern) return pattern;
  if (path.startsWith("/v1/services/")) return "/v1/services/{namespace}/{name}";
  if (path.startsWith("/v1/watch/")) return "/v1/watch/{namespace}/{name}";
  const known = [
    "/livez",
    "/readyz",
    "/metrics",
    "/v1/services",
    "/v1/watch",
  ];
  return known.includes(path) ? path : "other";
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
