/**
 * The blocking query of `GET /v1/services/{namespace}/{name}?index=&wait=`, as Consul's: the wait
 * for the Service's index to move (at once when it already differs, jittered so that clients
 * with the same wait do not return together), and the answer for a Service that went away
 * meanwhile. Admission and the answer itself stay in lib/routes/v1_services.ts.
 *
 * @module
 */
import type { ViewSource } from "../cache.ts";
import { errorResponse } from "../http_util.ts";
import type { Query } from "../query.ts";
import type { ServiceView } from "../service_view.ts";
import type { Waiters } from "../waiters.ts";

/** 404 for a Service that went away while a blocking query waited on it. */
export function goneResponse(tombstone: ServiceView): Response {
  return errorResponse(
    404,
    `Service ${tombstone.namespace}/${tombstone.name} is gone: no longer selected, or deleted`,
    { "X-Discovery-Index": String(tombstone.index), "Cache-Control": "no-cache" },
  );
}

/** Waits while the Service's index equals `q.index`, for at most `q.waitMs` (plus jitter); an
 * index that differs answers at once, as Consul does. Resolves with the tombstone when the
 * Service went away meanwhile; the drain signal (shutdown) ends the wait with the current state. */
export function waitForChange(
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
