/**
 * The health routes: the Go service's `/health/` (its whole subtree, any method) and `/livez`,
 * both `ok` while the process serves; `/readyz`, `ok` once every watched namespace has had a
 * complete list (and, with `--ready-max-staleness`, while no watch has been broken that long).
 * Open to every client (lib/access.ts) and the only routes of the probe listener.
 *
 * @module
 */
import type { EndpointCache } from "../cache.ts";
import type { HealthRegistry } from "../health.ts";
import { errorResponse, textResponse } from "../http_util.ts";
import { isoTime } from "../iso_time.ts";

/** `/health/` and `/livez`: the process is alive and serving. */
export function livez(): Response {
  return textResponse("ok");
}

/** Options for {@linkcode readyz}. */
export interface ReadyzOptions {
  /** The watches' health. */
  health: HealthRegistry;
  /** 503 once a watch has been broken this long (ms); 0: never. */
  maxStalenessMs: number;
  /** The clock the broken time is measured with. */
  now: () => number;
}

/**
 * /readyz: `ok`, or 503 with the reason. The reason (namespaces, the API server's error text,
 * which can name the ServiceAccount and the API server's URL) goes to the Pod's own clients and
 * the log only (`detail`); any other client, the kubelet included, reads the status and
 * `not ready`.
 */
export function readyz(cache: EndpointCache, options: ReadyzOptions, detail: boolean): Response {
  const notReady = (reason: string) => errorResponse(503, detail ? reason : "not ready");
  if (!cache.ready) return notReady("not ready: waiting for the first complete list");
  if (options.maxStalenessMs > 0) {
    for (const h of options.health.all()) {
      if (
        h.brokenSince !== undefined && options.now() - h.brokenSince > options.maxStalenessMs
      ) {
        return notReady(
          `stale: the watch of namespace ${h.namespace} has been broken since ` +
            `${isoTime(h.brokenSince)} (${h.lastError}); ` +
            "the last good view is still served",
        );
      }
    }
  }
  return textResponse("ok");
}
