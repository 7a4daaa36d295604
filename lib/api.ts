/**
 * The versioned JSON API beside the seed routes: the watched Services
 * (`GET /v1/services`), one Service with filters (`GET /v1/services/{namespace}/{name}`),
 * blocking queries (`?index=&wait=`) and Server-Sent Events (`GET /v1/watch[/{ns}/{name}]`).
 * Every answer carries an ETag from the one builder (lib/etag.ts) and the change index in
 * `X-Discovery-Index`; what is not watched answers 404 naming what is. See docs/api.md.
 *
 * @module
 */
import type { EndpointCache, ServiceView } from "./cache.ts";
import type { EndpointView, PortView } from "./endpoints.ts";
import { etag as etagOf } from "./etag.ts";
import type { HealthRegistry } from "./health.ts";
import { errorResponse, etagMatches, jsonResponse } from "./http_util.ts";
import { filterEndpoints, parseQuery, type Query, QueryError, targets } from "./query.ts";
import { countEndpoints } from "./service_view.ts";
import { sseResponse } from "./sse.ts";

/** Options for {@linkcode createApi}. */
export interface ApiOptions {
  /** The sidecar's own node and zone (downward API), for node and zone preferences. */
  self: { nodeName?: string; zone?: string };
  /** At most this many SSE streams and blocking queries at once. */
  maxWatchers: number;
  /** Counts open SSE streams and blocking queries, for metrics. */
  watchers: { sse: number; blocking: number };
  /** The drain signal: aborted on shutdown before the HTTP server stops, it ends blocking
   * queries with the current state and SSE streams with their final event. */
  signal?: AbortSignal;
  /** The watches' health: when each namespace's view was last known current. */
  health: HealthRegistry;
}

/** The /v1 routes: returns undefined for a path it does not serve. */
export type ApiHandler = (req: Request, path: string) => Promise<Response> | Response | undefined;

/** Builds the /v1 handler over the cache. */
export function createApi(cache: EndpointCache, options: ApiOptions): ApiHandler {
  const { watchers } = options;
  const tooMany = () =>
    errorResponse(
      429,
      `too many open watches (${options.maxWatchers}); retry later or raise --max-watchers`,
      { "Retry-After": "5" },
    );
  return (req, path) => {
    const parts = path.split("/").filter((p) => p !== "");
    if (parts[0] !== "v1") return undefined;
    const url = new URL(req.url);
    let q: Query;
    try {
      q = parseQuery(url.searchParams, options.self);
    } catch (e) {
      if (e instanceof QueryError) return errorResponse(400, e.message);
      throw e;
    }
    if (parts[1] === "services" && parts.length === 2) {
      return listServices(cache, req, options.health);
    }
    if (parts[1] === "services" && parts.length === 4) {
      const [ns, name] = [parts[2]!, parts[3]!];
      const notWatched = unwatched(cache, ns, name);
      if (notWatched) return notWatched;
      const health = options.health;
      if (q.index === undefined) return serviceResponse(cache, req, { ns, name, q, health });
      if (watchers.sse + watchers.blocking >= options.maxWatchers) return tooMany();
      watchers.blocking++;
      return block(cache, { ns, name, q, signal: AbortSignal.any(signals(req, options)) })
        .finally(() => watchers.blocking--)
        .then((gone) =>
          gone ? goneResponse(gone) : serviceResponse(cache, req, { ns, name, q, health })
        );
    }
    if (parts[1] === "watch" && (parts.length === 2 || parts.length === 4)) {
      if (q.index !== undefined) {
        return errorResponse(400, "?index and ?wait are for GET /v1/services");
      }
      if (watchers.sse + watchers.blocking >= options.maxWatchers) return tooMany();
      const [ns, name] = [parts[2], parts[3]];
      const lastId = req.headers.get("Last-Event-ID");
      if (lastId !== null && !/^\d{1,15}$/.test(lastId)) {
        return errorResponse(400, "Bad Last-Event-ID: use the id of an event this stream sent");
      }
      if (!cache.ready) return errorResponse(503, "not ready: no complete list yet");
      watchers.sse++;
      return sseResponse(cache, {
        select: (v) => ns === undefined || (v.namespace === ns && v.name === name),
        render: (v) => JSON.stringify(serviceJson(v, q)),
        lastEventId: lastId === null ? undefined : Number(lastId),
        onClose: () => watchers.sse--,
        signal: AbortSignal.any(signals(req, options)),
      });
    }
    return errorResponse(404, `no route ${JSON.stringify(path)}; see docs/api.md`);
  };
}

function signals(req: Request, options: ApiOptions): AbortSignal[] {
  return options.signal ? [req.signal, options.signal] : [req.signal];
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
  cache: EndpointCache,
  o: { ns: string; name: string; q: Query; signal: AbortSignal },
): Promise<ServiceView | undefined> {
  const view = cache.view(o.ns, o.name);
  if (view && view.index !== o.q.index) return Promise.resolve(undefined);
  if (o.signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    // Consul adds up to wait/16 so that many clients with the same wait do not return together.
    const wait = o.q.waitMs! + Math.random() * (o.q.waitMs! / 16);
    const done = (gone?: ServiceView) => {
      clearTimeout(timer);
      unsubscribe();
      o.signal.removeEventListener("abort", onAbort);
      resolve(gone);
    };
    const onAbort = () => done();
    const timer = setTimeout(done, wait);
    const unsubscribe = cache.subscribe((changed) => {
      const mine = changed.find((v) => v.namespace === o.ns && v.name === o.name);
      if (mine) done(mine.removed ? mine : undefined);
    });
    o.signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Per-view memo of default-query bodies: the common request costs no serialization. */
const bodies = new WeakMap<ServiceView, Map<string, string>>();

function serviceResponse(
  cache: EndpointCache,
  req: Request,
  o: { ns: string; name: string; q: Query; health: HealthRegistry },
): Response {
  if (!cache.synced(o.ns)) {
    return errorResponse(503, `not ready: no complete list yet for namespace ${o.ns}`);
  }
  const view = cache.view(o.ns, o.name);
  if (!view) return unwatched(cache, o.ns, o.name)!;
  const key = JSON.stringify({ ...o.q, index: undefined, waitMs: undefined });
  const etag = etagOf(view.generation, key);
  const headers = freshness(o.health, view.namespace, view.index, etag);
  if (etagMatches(req.headers.get("If-None-Match"), etag)) {
    return new Response(null, { status: 304, headers });
  }
  let memo = bodies.get(view);
  if (!memo) bodies.set(view, memo = new Map());
  let body = memo.get(key);
  if (body === undefined) {
    body = o.q.format === "text" ? textBody(view, o.q) : JSON.stringify(serviceJson(view, o.q));
    // A few query shapes per view are common; more are computed per request.
    if (memo.size < 8) memo.set(key, body);
  }
  if (o.q.format === "text") {
    headers["Content-Type"] = "text/plain; charset=utf-8";
    return new Response(body, { headers });
  }
  return jsonResponse(body, { headers });
}

function textBody(view: ServiceView, q: Query): string {
  const lines = targets(filterEndpoints(view.endpoints, q), q.port);
  return lines.length ? lines.join("\n") + "\n" : "";
}

function serviceJson(view: ServiceView, q: Query): Record<string, unknown> {
  const endpoints = filterEndpoints(view.endpoints, q);
  const ports = new Map<string, PortView>();
  for (const e of view.endpoints) for (const p of e.ports) ports.set(`${p.name}/${p.port}`, p);
  const out: Record<string, unknown> = {
    namespace: view.namespace,
    name: view.name,
    index: view.index,
    lastUpdated: view.changedAt.toISOString(),
    ports: [...ports.values()],
    endpoints: endpoints.map(endpointJson),
  };
  if (q.port !== undefined) out.targets = targets(endpoints, q.port);
  return out;
}

function endpointJson(e: EndpointView): Record<string, unknown> {
  return {
    addresses: e.addresses,
    addressType: e.addressType,
    ready: e.ready,
    serving: e.serving,
    terminating: e.terminating,
    nodeName: e.nodeName ?? null,
    zone: e.zone ?? null,
    hostname: e.hostname ?? null,
    targetRef: e.targetRef ?? null,
    hints: e.hints ?? null,
    ports: e.ports,
  };
}

function listServices(cache: EndpointCache, req: Request, health: HealthRegistry): Response {
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
    lastUpdated: v.changedAt.toISOString(),
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
    : health.namespace(namespace)?.knownCurrentAt ?? 0;
  const headers: Record<string, string> = {
    ETag: etag,
    "X-Discovery-Index": String(index),
    "Cache-Control": "no-cache",
  };
  if (Number.isFinite(at) && at > 0) {
    headers["X-Discovery-Last-Updated"] = new Date(at).toISOString();
    headers["X-Discovery-Age-Seconds"] = String(Math.max(0, Math.floor((Date.now() - at) / 1000)));
  }
  return headers;
}
