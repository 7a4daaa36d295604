/**
 * `/metrics` (Prometheus text format) and the request metrics it shows: per route label, the
 * latency histogram `kpd_http_request_duration_seconds` and the counts by status code
 * `kpd_http_requests_total`. Route labels are the route patterns, so their number stays bounded
 * whatever paths clients send.
 *
 * @module
 */
import type { Histogram, Labels, Metrics } from "../metrics.ts";
import { type Target, targetOf } from "../request_target.ts";
import { goPattern } from "./go_patterns.ts";

/** `/metrics`: every metric in Prometheus' text format. */
export function metricsRoute(metrics: Metrics | undefined): Response {
  return new Response(metrics?.render() ?? "", {
    headers: { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" },
  });
}

/** A route's request metrics. */
interface RouteSeries {
  latency: Histogram;
  codes: Map<number, [Labels, number]>;
}

/** Wraps `handle` so that each answer is counted and timed under its route's label. */
export function recordRequests<I>(
  metrics: Metrics,
  handle: (req: Request, target: Target, info?: I) => Response | Promise<Response>,
): (req: Request, info?: I) => Response | Promise<Response> {
  // Per route label: its latency series and its request counts by status code, looked up once.
  const series = new Map<string, RouteSeries>();
  const seriesOf = (route: string): RouteSeries => {
    let r = series.get(route);
    if (!r) {
      r = {
        latency: metrics.histogram("kpd_http_request_duration_seconds", { route }),
        codes: new Map(),
      };
      series.set(route, r);
    }
    return r;
  };
  return (req, info) => {
    const started = performance.now();
    const target = targetOf(req);
    const record = (resp: Response): Response => {
      const r = seriesOf(target.kind === "path" ? routeLabel(target.path) : "other");
      let count = r.codes.get(resp.status);
      if (!count) {
        count = metrics.series("kpd_http_requests_total", {
          route: r.latency.labels.route!,
          code: String(resp.status),
        });
        r.codes.set(resp.status, count);
      }
      count[1]++;
      r.latency.observe((performance.now() - started) / 1000);
      return resp;
    };
    // Only the blocking routes are asynchronous; the rest stay off the promise machinery.
    const resp = handle(req, target, info);
    return resp instanceof Promise ? resp.then(record) : record(resp);
  };
}

/** The route pattern of a path, for metric labels (bounded cardinality). */
function routeLabel(path: string): string {
  const pattern = goPattern(path);
  if (pattern) return pattern;
  if (path.startsWith("/v1/services/")) return "/v1/services/{namespace}/{name}";
  if (path.startsWith("/v1/watch/")) return "/v1/watch/{namespace}/{name}";
  const known = [
    "/livez",
    "/readyz",
    "/metrics",
    "/v1/services",
    "/v1/watch",
  ];
  return known.includes(path) ? path : "other";
}
