/**
 * The versioned JSON API beside the seed routes: the watched Services
 * (`GET /v1/services`), one Service with filters (`GET /v1/services/{namespace}/{name}`),
 * blocking queries (`?index=&wait=`) and Server-Sent Events (`GET /v1/watch[/{ns}/{name}]`).
 * Every answer carries an ETag from the one builder (lib/etag.ts) and the change index in
 * `X-Discovery-Index`; what is not watched answers 404 naming what is. See docs/api.md.
 *
 * @module
 */
import type { EndpointCache, ServiceView, ViewSource } from "./cache.ts";
import { etag as etagOf } from "./etag.ts";
import type { HealthRegistry } from "./health.ts";
import { addStaleness, errorResponse, etagMatches, jsonResponse } from "./http_util.ts";
import { parseQuery, type Query, QueryError } from "./query.ts";
import { serviceBody, textBody } from "./service_json.ts";
import { countEndpoints } from "./service_view.ts";
import type { Logger } from "./log.ts";
import { serialized } from "./serialize.ts";
import { sseResponse } from "./sse.ts";
import { SseHistory } from "./sse_history.ts";
import { Waiters } from "./waiters.ts";
import { isoTime } from "./iso_time.ts";
import type { PodIdentity } from "./self.ts";
import { SelfViews } from "./self_view.ts";

/** Options for {@linkcode createApi}. */
export interface ApiOptions {
  /** The sidecar's own node and zone (downward API), for node and zone preferences. */
  self: { nodeName?: string; zone?: string };
  /** At most this many SSE streams and blocking queries at once. */
  maxWatchers: number;
  /** Counts open SSE streams and blocking queries, and SSE streams closed for not reading;
   * `closed` (lib/open_watchers.ts) hears each end. */
  watchers: { sse: number; blocking: number; sseSlowClosed?: number; closed?: () => void };
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
  const history = new SseHistory(cache);
  const waiters = new Waiters(cache, options.signal);
  const peerWaiters = new Waiters(selves.excluded, options.signal);
  const tooMany = () =>
    errorResponse(
      429,
      `too many open watches (${options.maxWatchers}); retry later or raise --max-watchers`,
      { "Retry-After": "5" },
    );
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
    if (parts[1] === "services" && parts.length === 2) {
      return listServices(cache, req, options.health, selves);
    }
    if (parts[1] === "services" && parts.length === 4) {
      const [ns, name] = [parts[2]!, parts[3]!];
      const notWatched = unwatched(cache, ns, name);
      if (notWatched) return notWatched;
      const o = { ns, name, q, health: options.health, selves };
      if (q.index === undefined) return serviceResponse(cache, req, o);
      if (watchers.sse + watchers.blocking >= options.maxWatchers) return tooMany();
      watchers.blocking++;
      const [source, waiting] = q.excludeSelf ? [selves.excluded, peerWaiters] : [cache, waiters];
      return block(source, waiting, { ns, name, q, signal: req.signal })
        .finally(() => {
          watchers.blocking--;
          watchers.closed?.();
        })
        .then((gone) => gone ? goneResponse(gone) : serviceResponse(cache, req, o));
    }
    if (parts[1] === "watch" && (parts.length === 2 || parts.length === 4)) {
      if (q.index !== undefined) {
        return errorResponse(400, "?index and ?wait are for GET /v1/services");
      }
      const service = parts.length === 4 ? { namespace: parts[2]!, name: parts[3]! } : undefined;
      if (service && !watchable(cache, service.namespace, service.name)) {
        return errorResponse(
          404,
          `Service ${service.namespace}/${service.name} is not watched; see /v1/services`,
        );
      }
      const lastId = req.headers.get("Last-Event-ID");
      if (lastId !== null && lastId !== "" && !/^\d{1,15}$/.test(lastId)) {
        return errorResponse(400, "Bad Last-Event-ID: use the id of an event this stream sent");
      }
      if (watchers.sse + watchers.blocking >= options.maxWatchers) return tooMany();
      watchers.sse++;
      const shape = JSON.stringify({ ...q, index: undefined, waitMs: undefined, format: "sse" });
      return sseResponse(q.excludeSelf ? selves.excluded : cache, {
        history,
        service,
        frame: (v, type) => serialized(v, shape, () => eventBody(v, q, selves)).frame(type),
        lastEventId: lastId ? Number(lastId) : undefined,
        signal: options.signal,
        onClose: (reason, detail) => {
          watchers.sse--;
          watchers.closed?.();
          if (reason !== "slow") return;
          watchers.sseSlowClosed = (watchers.sseSlowClosed ?? 0) + 1;
          options.log?.log("warn", "closed a stream that stopped reading", {
            path,
            unsentBytes: detail.unsentBytes,
          });
        },
      });
    }
    return errorResponse(404, `no route ${JSON.stringify(path)}; see docs/api.md`);
  };
}

/** 404 for a namespace or Service that is not served, naming what is; undefined when it is. */
function unwatched(cache: EndpointCache, ns: string, name: string): Response | undefined {
  const what = cache.selection.describe();
  if (!cache.watchesNamespace(ns)) {
    return errorResponse(404, `namespace ${ns} is not watched; watched: ${what}`);
  }
  if (!cache.synced(ns)) return undefined;
  if (!cache.watches(ns, name)) {
    return errorResponse(404, `Service ${ns}/${name} is not watched; watched: ${what}`);
  }
  if (!cache.view(ns, name)) {
    return errorResponse(
      404,
      `Service ${ns}/${name} has no EndpointSlices (it does not exist, or is gone); watched: ${what}`,
    );
  }
  return undefined;
}

/** 404 for a Service that went away while a blocking query waited on it. */
function goneResponse(tombstone: ServiceView): Response {
  return errorResponse(
    404,
    `Service ${tombstone.namespace}/${tombstone.name} is gone: no longer selected, or deleted`,
    { "X-Discovery-Index": String(tombstone.index), "Cache-Control": "no-cache" },
  );
}

/** Waits while the Service's index equals `q.index`, for at most `q.waitMs` (plus jitter); an
 * index that differs answers at once, as Consul does. Resolves with the tombstone when the
 * Service went away meanwhile; the drain signal (shutdown) ends the wait with the current state. */
function block(
  cache: ViewSource,
  waiters: Waiters,
  o: { ns: string; name: string; q: Query; signal: AbortSignal },
): Promise<ServiceView | undefined> {
  const view = cache.view(o.ns, o.name);
  if (view && view.index !== o.q.index) return Promise.resolve(undefined);
  // Consul adds up to wait/16 so that many clients with the same wait do not return together.
  const wait = o.q.waitMs! + Math.random() * (o.q.waitMs! / 16);
  return waiters.wait(`${o.ns}/${o.name}`, wait, o.signal);
}

/**
 * Whether a stream for this Service can ever carry it, from the configuration alone: a
 * namespace that is not watched or a name not in --service-name never will. In selector mode
 * only the Service watch knows, so a name there is refused only once that watch has listed.
 */
function watchable(cache: EndpointCache, ns: string, name: string): boolean {
  const watched = cache.selection.plan.get(ns);
  if (!watched) return false;
  if (watched.kind === "names") return watched.names.includes(name);
  if (watched.kind === "all") return true;
  return cache.watches(ns, name) || !cache.synced(ns);
}

/** The event data of a view: its state (with this Pod's marks, unless it is left out), or for
 * a tombstone who left and when. */
function eventBody(view: ServiceView, q: Query, selves: SelfViews): string {
  if (!view.removed) return serviceBody(view, q, q.excludeSelf ? undefined : selves.of(view));
  return JSON.stringify({
    namespace: view.namespace,
    name: view.name,
    index: view.index,
    removed: true,
  });
}

function serviceResponse(
  cache: EndpointCache,
  req: Request,
  o: { ns: string; name: string; q: Query; health: HealthRegistry; selves: SelfViews },
): Response {
  if (!cache.synced(o.ns)) {
    return errorResponse(503, `not ready: no complete list yet for namespace ${o.ns}`);
  }
  const current = cache.view(o.ns, o.name);
  if (!current) return unwatched(cache, o.ns, o.name)!;
  // Without this Pod: the view whose index and generation move only when peers change.
  const view = o.q.excludeSelf ? o.selves.of(current).peers : current;
  const key = JSON.stringify({ ...o.q, index: undefined, waitMs: undefined });
  const etag = etagOf(view.generation, key);
  const headers = freshness(o.health, view.namespace, view.index, etag);
  if (etagMatches(req.headers.get("If-None-Match"), etag)) {
    return new Response(null, { status: 304, headers });
  }
  const body = serialized(
    view,
    key,
    () =>
      o.q.format === "text"
        ? textBody(view, o.q)
        : serviceBody(view, o.q, o.q.excludeSelf ? undefined : o.selves.of(view)),
  ).body;
  if (o.q.format === "text") {
    headers["Content-Type"] = "text/plain; charset=utf-8";
    return new Response(body, { headers });
  }
  return jsonResponse(body, { headers });
}

function listServices(
  cache: EndpointCache,
  req: Request,
  health: HealthRegistry,
  selves: SelfViews,
): Response {
  if (!cache.ready) return errorResponse(503, "not ready: no complete list yet");
  const views = cache.views();
  const etag = etagOf(`services.${cache.generation}`);
  const headers = freshness(health, undefined, cache.index, etag);
  if (etagMatches(req.headers.get("If-None-Match"), etag)) {
    return new Response(null, { status: 304, headers });
  }
  const services = views.map((v) => ({
    namespace: v.namespace,
    name: v.name,
    index: v.index,
    lastUpdated: isoTime(v.changedAt),
    self: selves.of(v).state,
    endpoints: countEndpoints(v.endpoints),
  }));
  return jsonResponse({ index: cache.index, services }, { headers });
}

/** ETag, index and staleness headers: when the namespace's view was last known current. */
export function freshness(
  health: HealthRegistry,
  namespace: string | undefined,
  index: number,
  etag: string,
): Record<string, string> {
  const at = namespace === undefined
    ? Math.min(...health.all().map((h) => h.knownCurrentAt ?? 0))
    : health.knownCurrentAt(namespace) ?? 0;
  const headers: Record<string, string> = {
    ETag: etag,
    "X-Discovery-Index": String(index),
    "Cache-Control": "no-cache",
  };
  return addStaleness(headers, at, Date.now());
}
