/**
 * `GET /v1/watch` (every watched Service) and `GET /v1/watch/{namespace}/{name}` (one): a
 * Server-Sent Events stream of the Services' states (lib/sse.ts), resumable with
 * `Last-Event-ID`. Each event's body is made once per view and shape and shared by every stream
 * (lib/view_bodies.ts). See docs/api.md.
 *
 * @module
 */
import type { EndpointCache } from "../cache.ts";
import { errorResponse } from "../http_util.ts";
import type { Logger } from "../log.ts";
import type { Query } from "../query.ts";
import type { SelfViews } from "../self_view.ts";
import { serviceBody } from "../service_json.ts";
import type { ServiceView } from "../service_view.ts";
import { sseResponse } from "../sse.ts";
import { SseHistory } from "../sse_history.ts";
import { bodyOf } from "../view_bodies.ts";

/** Options for {@linkcode v1Watch}. */
export interface V1WatchOptions {
  /** This Pod's part of each view, and the views without it. */
  selves: SelfViews;
  /** The drain signal: ends each stream after its final state. */
  signal?: AbortSignal;
  /** Where a stream closed for not reading is logged. */
  log?: Logger;
  /** Takes a slot for a stream: its release, or the 429 to answer. */
  admit: () => (() => void) | Response;
  /** Counts a stream closed because its client stopped reading. */
  onSlowClose: () => void;
}

/** The handler of `/v1/watch[/{namespace}/{name}]`: the path, its parsed query and the one
 * Service it names, if any. */
export type V1Watch = (
  req: Request,
  path: string,
  q: Query,
  service?: { namespace: string; name: string },
) => Response;

/** Builds the /v1/watch route over the cache. */
export function v1Watch(cache: EndpointCache, options: V1WatchOptions): V1Watch {
  const { selves } = options;
  const history = new SseHistory(cache);
  return (req, path, q, service) => {
    if (q.index !== undefined) {
      return errorResponse(400, "?index and ?wait are for GET /v1/services");
    }
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
    const release = options.admit();
    if (release instanceof Response) return release;
    const shape = JSON.stringify({ ...q, index: undefined, waitMs: undefined, format: "sse" });
    return sseResponse(q.excludeSelf ? selves.excluded : cache, {
      history,
      service,
      frame: (v, type) => bodyOf(v, shape, () => eventBody(v, q, selves)).frame(type),
      lastEventId: lastId ? Number(lastId) : undefined,
      signal: options.signal,
      onClose: (reason, detail) => {
        release();
        if (reason !== "slow") return;
        options.onSlowClose();
        options.log?.log("warn", "closed a stream that stopped reading", {
          path,
          unsentBytes: detail.unsentBytes,
        });
      },
    });
  };
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
