/** The headers README promises on the Go service's routes: Retry-After on the 503 before the
 * first list (and Go's zero time on /endpoints/last_updated/ then), and X-Discovery-Last-Updated / X-Discovery-Age-Seconds on the same clock as
 * `lastUpdated`. */
import assert from "node:assert/strict";
import { EndpointCache } from "../../lib/cache.ts";
import { HealthRegistry, WatchHealth } from "../../lib/health.ts";
import { createHandler } from "../../lib/routes/table.ts";
import { sliceFor } from "../support/slices.ts";

function setup(now: () => number) {
  const cache = new EndpointCache(new Map([["ns", { kind: "names", names: ["web"] }]]));
  const health = new HealthRegistry();
  const watch = new WatchHealth({ namespace: "ns", resource: "endpointslices" }, now);
  health.add(watch);
  const handler = createHandler(cache, { primary: { namespace: "ns", name: "web" }, health, now });
  const get = (path: string) => handler(new Request(`http://localhost${path}`)) as Response;
  return { get, store: cache.sliceStore("ns"), watch };
}

Deno.test("before the first list, /endpoints answers 503 with Retry-After and /endpoints/last_updated Go's zero time", async () => {
  const { get } = setup(() => Date.now());
  const r = get("/endpoints");
  assert.equal(r.status, 503);
  assert.equal(r.headers.get("retry-after"), "1");
  await r.body?.cancel();
  const last = get("/endpoints/last_updated");
  assert.equal(last.status, 200);
  assert.equal(last.headers.get("x-discovery-last-updated"), null);
  assert.equal(await last.text(), '{"lastUpdated": "0001-01-01T00:00:00+0000"}');
});

Deno.test("X-Discovery-Last-Updated is the lastUpdated instant on both routes; once the watch breaks it freezes and the age grows", async () => {
  const at = Date.parse("2026-12-04T10:00:00.000Z");
  let clock = at;
  const { get, store, watch } = setup(() => clock);
  store.replace([sliceFor("web", ["10.0.0.1"], "5")], "9");
  watch.heard();
  watch.broken("connection reset");
  clock = at + 7_500;
  const endpoints = get("/endpoints");
  const last = get("/endpoints/last_updated");
  assert.equal(endpoints.status, 200);
  const iso = new Date(at).toISOString();
  assert.equal(endpoints.headers.get("x-discovery-last-updated"), iso);
  assert.equal(last.headers.get("x-discovery-last-updated"), iso);
  for (const r of [endpoints, last]) assert.equal(r.headers.get("x-discovery-age-seconds"), "7");
  // The Go layout of the same instant, to the second.
  const body = await last.json();
  assert.equal(body.lastUpdated, iso.replace(/\.\d+Z$/, "+0000"));
  await endpoints.body?.cancel();
});
