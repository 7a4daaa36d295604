/**
 * Scenario `api_load`: the requests one sidecar makes to the API server, read from its
 * `apiserver_request_total` and `apiserver_longrunning_requests` counters for EndpointSlices.
 * First a check of which request scope is whose (the controller's and the bench's reads are
 * cluster-scoped, so namespace-scoped reads are the sidecar's alone); then a window with one
 * sidecar running, a few changes of its Service, and silence (in which the runner prepares the
 * fixtures of later scenarios, all in other namespaces).
 *
 * @module
 */
import { setPodReady } from "../tests/support/cluster/fixtures.ts";
import { kubeFetch } from "../tests/support/cluster/http.ts";
import type { Context } from "./_context.ts";
import { podService } from "./_fixtures.ts";
import { startSidecar } from "./_processes.ts";
import {
  type Counters,
  diffCounters,
  groupCounters,
  now,
  parseMetric,
  round,
  sleep,
} from "./util.ts";

/** Changes of the watched Service at the window's start. */
const CHANGES = 10;

async function scrape(): Promise<{ requests: Counters; longrunning: Counters }> {
  const r = await kubeFetch("GET", "/metrics");
  const text = await r.text();
  if (r.status !== 200) throw new Error(`GET /metrics: ${r.status}`);
  const eps = (l: Record<string, string>) => l.resource === "endpointslices";
  return {
    requests: parseMetric(text, "apiserver_request_total", eps),
    longrunning: parseMetric(text, "apiserver_longrunning_requests", eps),
  };
}

function byScope(c: Counters, scope: string): Record<string, number> {
  return groupCounters(new Map([...c].filter(([, v]) => v.labels.scope === scope)), ["verb"]);
}

/** Fills `results.apiLoad`; calls `prepare` inside the window. */
export async function apiLoad(ctx: Context, prepare: () => Promise<void>): Promise<void> {
  const before = await scrape();
  const t0 = now();
  await podService(ctx, "web10", 10);
  const after = await scrape();
  const diff = diffCounters(before.requests, after.requests);
  const verification = {
    namespaceScoped: byScope(diff, "namespace"),
    clusterScoped: byScope(diff, "cluster"),
    resourceScoped: byScope(diff, "resource"),
    openWatches: groupCounters(after.longrunning, ["scope", "verb"]),
    seconds: round((now() - t0) / 1000, 1),
  };
  // Its own Service, so that the changes below leave the other scenarios' Pods as they were.
  const web = await podService(ctx, "web10", 10);
  const variant = ctx.variants[0]!;
  const sc = await startSidecar(ctx, variant, { env: web.env });
  // The API server counts a request when it ends: let earlier watches of stopped processes land.
  await sleep(2000);
  const start = await scrape();
  const w0 = now();
  ctx.log(`api load: ${ctx.sizes.windowS} s window with one sidecar (${variant})`);
  for (let i = 0; i < CHANGES; i++) {
    await setPodReady(web.ns, `web10-${Math.floor(i / 2) % 10}`, i % 2 === 1);
  }
  const lastChange = now();
  await prepare();
  const left = ctx.sizes.windowS * 1000 - (now() - w0);
  if (left > 0) await sleep(left);
  const end = await scrape();
  const windowS = (now() - w0) / 1000;
  const reads = byScope(diffCounters(start.requests, end.requests), "namespace");
  const total = Object.values(reads).reduce((a, b) => a + b, 0);
  ctx.results.apiLoad = {
    variant,
    verification,
    windowS: round(windowS, 1),
    sidecarRequests: reads,
    openWatchesStart: groupCounters(start.longrunning, ["scope", "verb"]),
    openWatchesEnd: groupCounters(end.longrunning, ["scope", "verb"]),
    changesInWindow: CHANGES,
    quietS: round((now() - lastChange) / 1000, 0),
    perHourMeasured: round(total * 3600 / windowS, 1),
    // One watch per renewal; timeouts uniform in 300-600 s: mean 450 s → 3600 / 450 = 8.
    perHourAnalytical: 8,
  };
  ctx.log(`api load: namespace-scoped reads ${JSON.stringify(reads)} in ${round(windowS, 0)} s`);
  await sc.stop();
}
