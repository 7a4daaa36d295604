/**
 * The route table and the access gate: every request's target is read once
 * (lib/request_target.ts), checked against who may read it (lib/access.ts), and handed to the
 * file of its URL family: the Go service's `/endpoints/...` (lib/routes/endpoints.ts), health
 * (lib/routes/health.ts), `/metrics` (lib/routes/metrics.ts) and `/v1` (lib/routes/v1.ts). The
 * Go service's three ServeMux patterns keep Go's semantics (whole subtree, any method; the bare
 * forms are served directly instead of Go's 301); the routes added beside them take GET and
 * HEAD only. Handlers are plain `(req, info?) => Response` functions over the cache, testable
 * without a socket; they never call the API server.
 *
 * @module
 */
import { forbidden, isOpenPath, isProbePath, localClients } from "../access.ts";
import { DEFAULT_MAX_WATCHERS } from "../config.ts";
import type { EndpointCache } from "../cache.ts";
import { HealthRegistry } from "../health.ts";
import { errorResponse } from "../http_util.ts";
import type { Metrics } from "../metrics.ts";
import { OpenWatchers } from "../open_watchers.ts";
import { type Target, targetOf } from "../request_target.ts";
import { endpointsRoutes } from "./endpoints.ts";
import { type GoPattern, goPattern } from "./go_patterns.ts";
import { livez, readyz } from "./health.ts";
import { metricsRoute, recordRequests } from "./metrics.ts";
import { type ApiOptions, createApi } from "./v1.ts";

/** Options for {@linkcode createHandler}. */
export interface HandlerOptions extends Partial<ApiOptions> {
  /** The Service `/endpoints` serves (the Go service's single Service): the first one named. */
  primary?: { namespace: string; name: string };
  /** /readyz turns 503 once a watch has been broken this long (ms); 0 or unset: never. */
  readyMaxStalenessMs?: number;
  /** Where request counts and latencies go; also served on /metrics. */
  metrics?: Metrics;
  /** Serve the endpoint data and /v1 to clients outside the Pod too. Default false. */
  allowRemoteData?: boolean;
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

const ALLOWED = "GET, HEAD";

/** Client addresses whose loopback verdict is remembered; past this many the memo starts over,
 * so a scan from many addresses cannot grow it. A Pod has a few clients. */
const MAX_CLIENTS_REMEMBERED = 256;

/** Builds the request handler for the sidecar's routes. */
export function createHandler(cache: EndpointCache, options: HandlerOptions = {}): Handler {
  const now = options.now ?? Date.now;
  const health = options.health ?? new HealthRegistry();
  // The probe listener never reaches the API: it keeps no SSE history of its own.
  const api = options.healthOnly ? () => undefined : createApi(cache, {
    health,
    self: options.self ?? {},
    watchers: options.watchers ?? new OpenWatchers(DEFAULT_MAX_WATCHERS),
    signal: options.signal,
    log: options.log,
    pod: options.pod,
  });
  const data = endpointsRoutes(cache, { primary: options.primary, health, now });
  // The Go service's handlers ignored the method: Go's ServeMux hands every method over.
  const goRoutes: Record<GoPattern, (req: Request) => Response> = {
    "/health/": livez,
    "/endpoints/": data.endpoints,
    "/endpoints/last_updated/": data.lastUpdated,
  };
  const ready = { health, maxStalenessMs: options.readyMaxStalenessMs ?? 0, now };
  const routes: Record<string, (req: Request, local: boolean) => Response> = {
    "/livez": livez,
    "/readyz": (_req, local) => readyz(cache, ready, local),
    "/metrics": () => metricsRoute(options.metrics),
  };
  const allowRemote = options.allowRemoteData ?? false;
  const isLocal = rememberLocal(options.isLocalClient ?? localClients([]));
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
    const pattern = goPattern(path);
    if (pattern) return goRoutes[pattern](req);
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
  if (!options.metrics) return (req, info) => handle(req, targetOf(req), info);
  return recordRequests(options.metrics, handle);
}

/** `isLocalClient` with its verdicts remembered per address (at most
 * {@linkcode MAX_CLIENTS_REMEMBERED}). */
function rememberLocal(isLocalClient: (hostname: string) => boolean): (h: string) => boolean {
  const loopback = new Map<string, boolean>();
  return (hostname) => {
    let yes = loopback.get(hostname);
    if (yes === undefined) {
      if (loopback.size >= MAX_CLIENTS_REMEMBERED) loopback.clear();
      loopback.set(hostname, yes = isLocalClient(hostname));
    }
    return yes;
  };
}

/** A 301 to `location`, as Go's ServeMux redirects an unclean path (its body is a link). */
function redirect(location: string): Response {
  return new Response(null, { status: 301, headers: { Location: location } });
}

function probeNotFound(): Response {
  return errorResponse(404, "the probe port serves /livez, /readyz and /health only");
}
