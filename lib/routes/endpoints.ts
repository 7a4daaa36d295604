/**
 * The Go service's data routes: `/endpoints/` (the first Service named with `--service-name`,
 * in the Kubernetes v1 Endpoints shape) and `/endpoints/last_updated/` (when that view was last
 * known current, in Go's time layout). Both answer any method, as Go's handlers did, and read
 * only the cache's current view.
 *
 * @module
 */
import type { EndpointCache } from "../cache.ts";
import { etag as etagOf } from "../etag.ts";
import type { HealthRegistry } from "../health.ts";
import { errorResponse, JSON_TYPE, jsonResponse } from "../http_util.ts";
import { isoTime } from "../iso_time.ts";
import type { ServiceView } from "../service_view.ts";
import { addStaleness, answerHeaders, notModified } from "./conditional.ts";

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

/** Options for {@linkcode endpointsRoutes}. */
export interface EndpointsRoutesOptions {
  /** The Service `/endpoints` serves: the first one named; undefined answers 404. */
  primary?: { namespace: string; name: string };
  /** When each namespace's view was last known current. */
  health: HealthRegistry;
  /** The clock ages are measured with. */
  now: () => number;
}

/** The handlers of `/endpoints/` and `/endpoints/last_updated/`. */
export interface EndpointsRoutes {
  /** `/endpoints/` and its subtree. */
  endpoints: (req: Request) => Response;
  /** `/endpoints/last_updated/` and its subtree. */
  lastUpdated: () => Response;
}

/** Builds the Go service's data routes over the cache. */
export function endpointsRoutes(
  cache: EndpointCache,
  options: EndpointsRoutesOptions,
): EndpointsRoutes {
  const { primary, health, now } = options;
  const notSynced = (what: string): Response =>
    errorResponse(
      503,
      `not ready: no complete list of EndpointSlices yet for ${what}; see the sidecar's log for why`,
      { "Retry-After": "1" },
    );
  const noPrimary = () =>
    errorResponse(404, "/endpoints serves a Service named with --service-name; use /v1/services");
  let tags: ViewTags | undefined;
  return {
    endpoints: (req) => {
      if (!primary) return noPrimary();
      const view = cache.view(primary.namespace, primary.name);
      if (!view) return notSynced(`${primary.namespace}/${primary.name}`);
      // Made once per view, on the first request after a change: not per request.
      if (tags?.view !== view) tags = tagsOf(view);
      const headers = answerHeaders(tags, health.knownCurrentAt(view.namespace), now());
      const unchanged = notModified(req, headers);
      if (unchanged) return unchanged;
      headers["Content-Type"] = JSON_TYPE;
      return new Response(view.endpointsBody, { headers });
    },
    lastUpdated: () => {
      if (!primary) return noPrimary();
      const at = health.namespace(primary.namespace)?.knownCurrentAt;
      // Never current yet (before the first list, RBAC missing): Go's zero time, as the Go
      // service answered before its first poll; it parses, and reads as infinitely stale.
      if (at === undefined) {
        return jsonResponse(GO_ZERO_TIME_BODY, { headers: { "Cache-Control": "no-cache" } });
      }
      // Byte for byte what the Go service wrote, one space after the colon.
      return jsonResponse(`{"lastUpdated": "${goTimestamp(at)}"}`, {
        headers: addStaleness({ "Cache-Control": "no-cache" }, at, now()),
      });
    },
  };
}

/** The ETag and index /endpoints sends for one view, made once per view. */
interface ViewTags {
  view: ServiceView;
  etag: string;
  index: string;
}

function tagsOf(view: ServiceView): ViewTags {
  return { view, etag: etagOf(view.generation), index: String(view.index) };
}
