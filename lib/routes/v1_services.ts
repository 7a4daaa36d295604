/**
 * `GET /v1/services` (the watched Services, with counts) and `GET /v1/services/{namespace}/{name}`
 * (one Service, filtered by the query; with `?index=&wait=` a blocking query that answers on the
 * next change, as Consul's; the wait is lib/routes/v1_blocking.ts). Every answer is conditional (ETag, 304, index and age headers); what
 * is not watched answers 404 naming what is. See docs/api.md.
 *
 * @module
 */
import type { EndpointCache } from "../cache.ts";
import { etag as etagOf } from "../etag.ts";
import type { HealthRegistry } from "../health.ts";
import { errorResponse, jsonResponse } from "../http_util.ts";
import { isoTime } from "../iso_time.ts";
import type { Query } from "../query.ts";
import type { SelfViews } from "../self_view.ts";
import { bodyOf } from "../view_bodies.ts";
import { serviceBody, textBody } from "../service_json.ts";
import { countEndpoints } from "../service_view.ts";
import { Waiters } from "../waiters.ts";
import { answerHeaders, notModified } from "./conditional.ts";
import { goneResponse, waitForChange } from "./v1_blocking.ts";

/** Options for {@linkcode v1Services}. */
export interface V1ServicesOptions {
  /** When each namespace's view was last known current. */
  health: HealthRegistry;
  /** This Pod's part of each view, and the views without it. */
  selves: SelfViews;
  /** The drain signal: ends every blocking query with the current state. */
  signal?: AbortSignal;
  /** The clock ages are measured with. */
  now: () => number;
  /** Takes a slot for a blocking query: its release, or the 429 to answer. */
  admit: () => (() => void) | Response;
}

/** The handlers of `/v1/services` and `/v1/services/{namespace}/{name}`. */
export interface V1Services {
  /** `GET /v1/services`. */
  list: (req: Request) => Response;
  /** `GET /v1/services/{namespace}/{name}`, with the parsed query. */
  one: (req: Request, ns: string, name: string, q: Query) => Response | Promise<Response>;
}

/** Builds the /v1/services routes over the cache. */
export function v1Services(cache: EndpointCache, options: V1ServicesOptions): V1Services {
  const { selves } = options;
  const waiters = new Waiters(cache, options.signal);
  const peerWaiters = new Waiters(selves.excluded, options.signal);
  return {
    list: (req) => listServices(cache, req, options),
    one: (req, ns, name, q) => {
      const notWatched = unwatched(cache, ns, name);
      if (notWatched) return notWatched;
      if (q.index === undefined) return serviceResponse(cache, req, ns, name, q, options);
      const release = options.admit();
      if (release instanceof Response) return release;
      const [source, waiting] = q.excludeSelf ? [selves.excluded, peerWaiters] : [cache, waiters];
      return waitForChange(source, waiting, { ns, name, q, signal: req.signal })
        .finally(release)
        .then((gone) =>
          gone ? goneResponse(gone) : serviceResponse(cache, req, ns, name, q, options)
        );
    },
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

/** The Service's answer now: 503 before its namespace's first list, else conditional. */
function serviceResponse(
  cache: EndpointCache,
  req: Request,
  ns: string,
  name: string,
  q: Query,
  o: V1ServicesOptions,
): Response {
  if (!cache.synced(ns)) {
    return errorResponse(503, `not ready: no complete list yet for namespace ${ns}`);
  }
  const current = cache.view(ns, name);
  if (!current) return unwatched(cache, ns, name)!;
  // Without this Pod: the view whose index and generation move only when peers change.
  const view = q.excludeSelf ? o.selves.of(current).peers : current;
  const key = JSON.stringify({ ...q, index: undefined, waitMs: undefined });
  const etag = etagOf(view.generation, key);
  const headers = answerHeaders(
    { etag, index: view.index },
    o.health.knownCurrentAt(view.namespace) ?? 0,
    o.now(),
  );
  const unchanged = notModified(req, headers);
  if (unchanged) return unchanged;
  const body = bodyOf(
    view,
    key,
    () =>
      q.format === "text"
        ? textBody(view, q)
        : serviceBody(view, q, q.excludeSelf ? undefined : o.selves.of(view)),
  ).body;
  if (q.format === "text") {
    headers["Content-Type"] = "text/plain; charset=utf-8";
    return new Response(body, { headers });
  }
  return jsonResponse(body, { headers });
}

/** `GET /v1/services`: every watched Service with its counts, conditional. */
function listServices(cache: EndpointCache, req: Request, o: V1ServicesOptions): Response {
  if (!cache.ready) return errorResponse(503, "not ready: no complete list yet");
  const views = cache.views();
  const etag = etagOf(`services.${cache.generation}`);
  // The list is as current as its least current namespace.
  const at = Math.min(...o.health.all().map((h) => h.knownCurrentAt ?? 0));
  const headers = answerHeaders({ etag, index: cache.index }, at, o.now());
  const unchanged = notModified(req, headers);
  if (unchanged) return unchanged;
  const services = views.map((v) => ({
    namespace: v.namespace,
    name: v.name,
    index: v.index,
    lastUpdated: isoTime(v.changedAt),
    self: o.selves.of(v).state,
    endpoints: countEndpoints(v.endpoints),
  }));
  return jsonResponse({ index: cache.index, services }, { headers });
}
