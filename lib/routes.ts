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
import { forbidden, isOpenPath, isProbePath, localClients } from "./access.ts";
import { type ApiOptions, createApi } from "./api.ts";
import type { EndpointCache, ServiceView } from "./cache.ts";
import { etag as etagOf } from "./etag.ts";
import { HealthRegistry } from "./health.ts";
import { addStaleness, errorResponse, etagMatches, JSON_TYPE, jsonResponse } from "./http_util.ts";
import type { Histogram, Labels, Metrics } from "./metrics.ts";
import { isoTime } from "./iso_time.ts";
import { type Target, targetOf } from "./request_target.ts";

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
  /** Whether a client address is one of the Pod's own containers. Default: 127.0.0.1 and ::1
   * only (lib/access.ts). */
  isLocalClient?: (hostname: string) => boolean;
  /** Serve the health routes only, 404 for everything else: the probe listener. */
  healthOnly?: boolean;
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
  return isoTime(ms).slice(0, 19) + "+0000";
}

/** `/endpoints/last_updated/` before the view was ever current: the Go service's answer before
 * its first successful poll, Go's zero time (`time.Time{}`) in its layout. */
export const GO_ZERO_TIME_BODY = '{"lastUpdated": "0001-01-01T00:00:00+0000"}';

const ALLOWED = "GET, HEAD";

/** Builds the request handler for the sidecar's routes. */
export function createHandler(cache: EndpointCache, options: HandlerOptions = {}): Handler {
  const { primary, metrics } = options;
  const now = options.now ?? Date.now;
  const health = options.health ?? new HealthRegistry();
  // The probe listener never reaches the API: it keeps no SSE history of its own.
  const api = options.healthOnly ? () => undefined : createApi(cache, {
    health,
    self: options.self ?? {},
    maxWatchers: options.maxWatchers ?? 1000,
    watchers: options.watchers ?? { sse: 0, blocking: 0 },
    signal: options.signal,
    log: options.log,
    pod: options.pod,
  });
  const notSynced = (what: string): Response =>
    errorResponse(
      503,
      `not ready: no complete list of EndpointSlices yet for ${what}; see the sidecar's log for why`,
      { "Retry-After": "1" },
    );
  const noPrimary = () =>
    errorResponse(404, "/endpoints serves a Service named with --service-name; use /v1/services");
  let shown: Shown | undefined;
  const seed: Record<SeedPattern, (req: Request) => Response> = {
    "/health/": () => text("ok"),
    "/endpoints/": (req) => {
      if (!primary) return noPrimary();
      const view = cache.view(primary.namespace, primary.name);
      if (!view) return notSynced(`${primary.namespace}/${primary.name}`);
      // Made once per view, on the first request after a change: not per request.
      if (shown?.view !== view) shown = shownOf(view);
      const headers: Record<string, string> = {
        ETag: shown.etag,
        "X-Discovery-Index": shown.index,
        "Cache-Control": "no-cache",
      };
      addStaleness(headers, health.knownCurrentAt(view.namespace), now());
      if (etagMatches(req.headers.get("If-None-Match"), shown.etag)) {
        return new Response(null, { status: 304, headers });
      }
      headers["Content-Type"] = JSON_TYPE;
      return new Response(view.v1Body, { headers });
    },
    "/endpoints/last_updated/": () => {
      if (!primary) return noPrimary();
      const at = health.namespace(primary.namespace)?.knownCurrentAt;
      // Never current yet (before the first list, RBAC missing): Go's zero time, as the Go
      // service answered before its first poll; it parses, and reads as infinitely stale.
      if (at === undefined) {
        return jsonResponse(GO_ZERO_TIME_BODY, { headers: { "Cache-Control": "no-cache" } });
      }
      // Byte for byte what the Go service wrote, one space after the colon.
      return jsonResponse(`{"lastUpdated": "${goTimestamp(at)}"}`, {
        headers: {
          "Cache-Control": "no-cache",
          "X-Discovery-Last-Updated": isoTime(at),
          "X-Discovery-Age-Seconds": String(Math.max(0, Math.floor((now() - at) / 1000))),
        },
      });
    },
  };
  const routes: Record<string, (req: Request, local: boolean) => Response> = {
    "/livez": () => text("ok"),
    "/readyz": (_req, local) => readyz(cache, health, options.readyMaxStalenessMs ?? 0, local),
    "/metrics": () =>
      new Response(metrics?.render() ?? "", {
        headers: { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" },
      }),
  };
  const allowRemote = options.allowRemoteData ?? false;
  const isLocalClient = options.isLocalClient ?? localClients([]);
  const loopback = new Map<string, boolean>();
  const isLocal = (hostname: string): boolean => {
    let yes = loopback.get(hostname);
    if (yes === undefined) {
      if (loopback.size >= MAX_CLIENTS_REMEMBERED) loopback.clear();
      loopback.set(hostname, yes = isLocalClient(hostname));
    }
    return yes;
  };
  const healthOnly = options.healthOnly ?? false;
  const handle = (
    req: Request,
    target: Target,
    info?: ClientInfo,
  ): Response | Promise<Response> => {
    if (target.kind === "bad") return errorResponse(target.status, target.message);
    if (target.kind === "redirect") {
      // Go's ServeMux answers an unclean path with a redirect to the clean one; the probe
      // listener only to a health route.
      if (healthOnly && !isProbePath(target.location.split("?")[0]!)) return probeNotFound();
      return redirect(target.location);
    }
    const path = target.path;
    if (healthOnly && !isProbePath(path)) return probeNotFound();
    const client = info?.remoteAddr;
    const local = client?.transport !== "tcp" || isLocal(client.hostname);
    if (!allowRemote && !local && !isOpenPath(path)) return forbidden(path, client!.hostname);
    const pattern = seedPattern(path);
    // Go's ServeMux hands every method to the handler; the seed's handlers ignored it.
    if (pattern) return seed[pattern](req);
    const route = routes[path];
    const isApi = path === "/v1" || path.startsWith("/v1/");
    if (!route && !isApi) {
      return errorResponse(404, `no route ${JSON.stringify(path)}; see the README`);
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return errorResponse(405, `method ${req.method} not allowed on ${path}; use GET`, {
        Allow: ALLOWED,
      });
    }
    if (route) return route(req, local);
    return api(req, path, target.search) ??
      errorResponse(404, `no route ${JSON.stringify(path)}; see the README`);
  };
  if (!metrics) return (req, info) => handle(req, targetOf(req), info);
  // Per route label: its latency series and its request counts by status code, looked up once.
  const series = new Map<string, RouteSeries>();
  const seriesOf = (route: string): RouteSeries => {
    let r = series.get(route);
    if (!r) {
      r = {
        latency: metrics.histogram("kpd_http_request_duration_seconds", { route }),
        codes: new Map(),
      };
      series.set(route, r);
    }
    return r;
  };
  return (req, info) => {
    const started = performance.now();
    const target = targetOf(req);
    const record = (resp: Response): Response => {
      const r = seriesOf(target.kind === "path" ? routeLabel(target.path) : "other");
      let count = r.codes.get(resp.status);
      if (!count) {
        count = metrics.series("kpd_http_requests_total", {
          route: r.latency.labels.route!,
          code: String(resp.status),
        });
        r.codes.set(resp.status, count);
      }
      count[1]++;
      r.latency.observe((performance.now() - started) / 1000);
      return resp;
    };
    // Only the blocking routes are asynchronous; the rest stay off the promise machinery.
    const resp = handle(req, target, info);
    return resp instanceof Promise ? resp.then(record) : record(resp);
  };
}

/** Client addresses whose loopback verdict is remembered; past this many the memo starts over,
 * so a scan from many addresses cannot grow it. A Pod has a few clients. */
const MAX_CLIENTS_REMEMBERED = 256;

/** What /endpoints sends for one view, made once per view. */
interface Shown {
  view: ServiceView;
  etag: string;
  index: string;
}

function shownOf(view: ServiceView): Shown {
  return { view, etag: etagOf(view.generation), index: String(view.index) };
}

/** A route's request metrics. */
interface RouteSeries {
  latency: Histogram;
  codes: Map<number, [Labels, number]>;
}

/**
 * /readyz: `ok`, or 503 with the reason. The reason (namespaces, the API server's error text,
 * which can name the ServiceAccount and the API server's URL) goes to the Pod's own clients and
 * the log only; any other client, the kubelet included, reads the status and `not ready`.
 */
function readyz(
  cache: EndpointCache,
  health: HealthRegistry,
  maxStalenessMs: number,
  detail: boolean,
): Response {
  const notReady = (reason: string) => errorResponse(503, detail ? reason : "not ready");
  if (!cache.ready) return notReady("not ready: waiting for the first complete list");
  if (maxStalenessMs > 0) {
    for (const h of health.all()) {
      if (h.brokenSince !== undefined && Date.now() - h.brokenSince > maxStalenessMs) {
        return notReady(
          `stale: the watch of namespace ${h.namespace} has been broken since ` +
            `${isoTime(h.brokenSince)} (${h.lastError}); ` +
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

/** A 301 to `location`, as Go's ServeMux redirects an unclean path (its body is a link). */
function redirect(location: string): Response {
  return new Response(null, { status: 301, headers: { Location: location } });
}

function probeNotFound(): Response {
  return errorResponse(404, "the probe port serves /livez, /readyz and /health only");
}

function text(body: string): Response {
  return new Response(body, { headers: { "Content-Type": "text/plain; charset=utf-8" } });
}
