/**
 * The sidecar's metric definitions, served on `/metrics`: endpoints and EndpointSlices per
 * watched Service, each reflector's counters (watches, lists, 410s, events, backoff, last event
 * age), open SSE streams and blocking queries, readiness and memory. Each is read when scraped;
 * nothing is counted twice. The request metrics are lib/routes/metrics.ts'.
 *
 * @module
 */
import type { EndpointCache } from "./cache.ts";
import { Metrics } from "./metrics.ts";
import type { OpenWatchers } from "./open_watchers.ts";
import type { Reflector } from "./reflector.ts";
import { countEndpoints } from "./service_view.ts";

/** The metrics of a running sidecar over its cache, reflectors and open watchers. */
export function sidecarMetrics(
  cache: EndpointCache,
  reflectors: Reflector[],
  watchers: OpenWatchers,
): Metrics {
  const m = new Metrics();
  m.counter("kpd_http_requests_total", "HTTP requests by route and status code");
  m.gauge(
    "kpd_endpoints",
    "Endpoints per watched Service by state",
    () =>
      cache.views().flatMap((v) => {
        const base = { namespace: v.namespace, service: v.name };
        const n = countEndpoints(v.endpoints);
        return [
          [{ ...base, state: "ready" }, n.ready],
          [{ ...base, state: "serving" }, n.serving],
          [{ ...base, state: "terminating" }, n.terminating],
          [{ ...base, state: "all" }, n.total],
        ] as [Record<string, string>, number][];
      }),
  );
  // 0 for a watched Service that does not exist: the controller keeps a slice for every other.
  m.gauge(
    "kpd_endpoint_slices",
    "EndpointSlices per watched Service; 0: the Service does not exist (or has no selector)",
    () =>
      cache.views().map((v) =>
        [
          { namespace: v.namespace, service: v.name },
          cache.sliceCount(v.namespace, v.name),
        ] as [Record<string, string>, number]
      ),
  );
  const per = (f: (r: Reflector) => number) => () =>
    reflectors.map((r) => [r.labels, f(r)] as [Record<string, string>, number]);
  m.gauge(
    "kpd_watch_starts_total",
    "Watch requests started",
    per((r) => r.stats.watches),
    "counter",
  );
  m.gauge(
    "kpd_lists_total",
    "Complete lists (first sync and relists)",
    per((r) => r.stats.lists),
    "counter",
  );
  m.gauge(
    "kpd_watch_expired_total",
    "410 Gone answers that forced a relist",
    per((r) => r.stats.expired),
    "counter",
  );
  m.gauge("kpd_watch_events_total", "Watch events applied", per((r) => r.stats.events), "counter");
  m.gauge(
    "kpd_backoff_seconds",
    "Current backoff before the next try; 0 when healthy",
    per((r) => r.stats.backoffMs / 1000),
  );
  m.gauge(
    "kpd_last_event_age_seconds",
    "Seconds since the last watch event or bookmark",
    per((r) => r.stats.lastEventAt ? (Date.now() - r.stats.lastEventAt) / 1000 : -1),
  );
  m.gauge("kpd_open_watchers", "Open SSE streams and blocking queries", () => [
    [{ kind: "sse" }, watchers.sse],
    [{ kind: "blocking" }, watchers.blocking],
  ]);
  m.gauge(
    "kpd_sse_slow_closed_total",
    "SSE streams closed because they held too much unsent for too long (the client stopped reading)",
    () => [[{}, watchers.sseSlowClosed]],
    "counter",
  );
  m.gauge(
    "kpd_ready",
    "1 once every namespace had a complete list",
    () => [[{}, cache.ready ? 1 : 0]],
  );
  // What a memory limit is set against: the process's resident memory, and the part of it that
  // is the JavaScript heap (the rest is the runtime: its code, TLS, HTTP).
  m.gauge(
    "process_resident_memory_bytes",
    "Resident memory of the process",
    () => [[{}, Deno.memoryUsage().rss]],
  );
  m.gauge("kpd_js_heap_bytes", "JavaScript heap by kind (used, total committed)", () => {
    const u = Deno.memoryUsage();
    return [[{ kind: "used" }, u.heapUsed], [{ kind: "total" }, u.heapTotal]];
  });
  return m;
}
