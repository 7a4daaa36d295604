/**
 * The versioned JSON API, `/v1`: reads the query once (lib/query.ts), then hands the request to
 * its URL family, `/v1/services` (lib/routes/v1_services.ts) or `/v1/watch`
 * (lib/routes/v1_watch.ts); SSE streams and blocking queries are admitted by the one owner of
 * clients that wait (lib/open_watchers.ts), and answered 429 past `--max-watchers`.
 * Every answer carries an ETag from the one builder (lib/etag.ts) and the change index in
 * `X-Discovery-Index`; what is not watched answers 404 naming what is. See docs/api.md.
 *
 * @module
 */
import type { EndpointCache } from "../cache.ts";
import type { HealthRegistry } from "../health.ts";
import { errorResponse } from "../http_util.ts";
import type { Logger } from "../log.ts";
import type { OpenWatchers, WatcherKind } from "../open_watchers.ts";
import { parseQuery, type Query, QueryError } from "../query.ts";
import type { PodIdentity } from "../self.ts";
import { SelfViews } from "../self_view.ts";
import { v1Services } from "./v1_services.ts";
import { v1Watch } from "./v1_watch.ts";

/** Options for {@linkcode createApi}. */
export interface ApiOptions {
  /** The sidecar's own node and zone (downward API), for node and zone preferences. */
  self: { nodeName?: string; zone?: string };
  /** Admits SSE streams and blocking queries up to `--max-watchers` and counts them. */
  watchers: OpenWatchers;
  /** The drain signal: aborted on shutdown before the HTTP server stops, it ends blocking
   * queries with the current state and SSE streams with their final event. */
  signal?: AbortSignal;
  /** The watches' health: when each namespace's view was last known current. */
  health: HealthRegistry;
  /** Where a stream closed for not reading and a contradicting Pod identity are logged. */
  log?: Logger;
  /** This Pod (lib/self_identity.ts): marks its endpoints, and `?exclude=self` leaves them out.
   * Default: unknown (no marks; `exclude=self` answers 400). */
  pod?: PodIdentity;
  /** The clock ages are measured with. Default `Date.now`. */
  now?: () => number;
}

/** The /v1 routes: returns undefined for a path it does not serve. `search` is the query
 * (without `?`), read once with the path (lib/request_target.ts), never from `req.url`. */
export type ApiHandler = (
  req: Request,
  path: string,
  search?: string,
) => Promise<Response> | Response | undefined;

/** Builds the /v1 handler over the cache. */
export function createApi(cache: EndpointCache, options: ApiOptions): ApiHandler {
  const { watchers } = options;
  // First: every later reader of a change finds this Pod's part of the new view made.
  const selves = new SelfViews(cache, { identity: options.pod ?? { ips: [] }, log: options.log });
  const admit = (kind: WatcherKind) => (): (() => void) | Response =>
    watchers.admit(kind) ?? errorResponse(
      429,
      `too many open watches (${watchers.max}); retry later or raise --max-watchers`,
      { "Retry-After": "5" },
    );
  const watch = v1Watch(cache, {
    selves,
    signal: options.signal,
    log: options.log,
    admit: admit("sse"),
    onSlowClose: () => watchers.slowClosed(),
  });
  const services = v1Services(cache, {
    health: options.health,
    selves,
    signal: options.signal,
    now: options.now ?? Date.now,
    admit: admit("blocking"),
  });
  return (req, path, search = "") => {
    const parts = path.split("/").filter((p) => p !== "");
    if (parts[0] !== "v1") return undefined;
    let q: Query;
    try {
      q = parseQuery(new URLSearchParams(search), options.self);
    } catch (e) {
      if (e instanceof QueryError) return errorResponse(400, e.message);
      throw e;
    }
    if (q.excludeSelf && !selves.known) {
      return errorResponse(
        400,
        "?exclude=self needs this Pod's identity: start the sidecar with POD_NAME and " +
          "POD_NAMESPACE (or POD_IPS) from the downward API; see docs/api.md",
      );
    }
    if (parts[1] === "services" && parts.length === 2) return services.list(req);
    if (parts[1] === "services" && parts.length === 4) {
      return services.one(req, parts[2]!, parts[3]!, q);
    }
    if (parts[1] === "watch" && (parts.length === 2 || parts.length === 4)) {
      const service = parts.length === 4 ? { namespace: parts[2]!, name: parts[3]! } : undefined;
      return watch(req, path, q, service);
    }
    return errorResponse(404, `no route ${JSON.stringify(path)}; see docs/api.md`);
  };
}
