import assert from "node:assert/strict";
import type { V1EndpointSlice } from "@kubernetes/client-node";
import { EndpointCache } from "../../lib/cache.ts";
import { HealthRegistry, WatchHealth } from "../../lib/health.ts";
import { createHandler } from "../../lib/routes.ts";

const web = { namespace: "ns", name: "web" };

function sliceFor(service: string, ips: string[], rv: string): V1EndpointSlice {
  return {
    addressType: "IPv4",
    metadata: {
      name: `${service}-abc`,
      resourceVersion: rv,
      labels: { "kubernetes.io/service-name": service },
    },
    ports: [{ name: "http", port: 80, protocol: "TCP" }],
    endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
  };
}

function setup() {
  const cache = new EndpointCache(new Map([["ns", { kind: "names", names: ["web"] }]]));
  const health = new HealthRegistry();
  const watch = new WatchHealth({ namespace: "ns", resource: "endpointslices" });
  health.add(watch);
  const handler = createHandler(cache, { primary: web, health });
  const get = (path: string, headers: HeadersInit = {}, method = "GET") =>
    handler(new Request(`http://localhost${path}`, { method, headers })) as Response;
  const slices = cache.sliceStore("ns");
  // As the reflector does: a complete list makes the watch healthy.
  const store = {
    ...slices,
    replace: (...a: Parameters<typeof slices.replace>) => {
      slices.replace(...a);
      watch.heard();
    },
  };
  return { cache, get, store, watch };
}

Deno.test("before the first list /endpoints answers 503 with a JSON error, not an empty object", async () => {
  const { get } = setup();
  const r = get("/endpoints");
  assert.equal(r.status, 503);
  const body = await r.json();
  assert.match(body.error, /not ready/);
  assert.equal(get("/readyz").status, 503);
  await get("/readyz").body?.cancel();
  assert.equal(await get("/health").text(), "ok");
  assert.equal(await get("/livez").text(), "ok");
});

Deno.test("after the list /endpoints serves the v1 shape and /readyz turns 200", async () => {
  const { store, get } = setup();
  store.replace(
    [sliceFor("web", ["10.0.0.1"], "5"), sliceFor("other", ["10.9.9.9"], "6")],
    "9",
  );
  const r = get("/endpoints/");
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.subsets[0].addresses[0].ip, "10.0.0.1");
  assert.equal(body.subsets.length, 1);
  assert.equal(r.headers.get("X-Discovery-Index"), "9");
  assert.equal(await get("/readyz").text(), "ok");
  const lu = await get("/endpoints/last_updated").json();
  assert.ok(!Number.isNaN(Date.parse(lu.lastUpdated)));
});

Deno.test("a watched Service with no slices is empty and ready, and filled when it appears", async () => {
  const { store, get } = setup();
  store.replace([], "3");
  assert.deepEqual((await get("/endpoints").json()).subsets, []);
  store.apply("ADDED", sliceFor("web", ["10.0.0.7"], "4"));
  assert.equal((await get("/endpoints").json()).subsets[0].addresses[0].ip, "10.0.0.7");
});

Deno.test("If-None-Match with the current ETag answers 304; a change makes a new ETag", async () => {
  const { store, get } = setup();
  store.replace([sliceFor("web", ["10.0.0.1"], "5")], "5");
  const first = get("/endpoints");
  const etag = first.headers.get("ETag")!;
  await first.body?.cancel();
  assert.equal(get("/endpoints", { "If-None-Match": etag }).status, 304);
  store.apply("MODIFIED", sliceFor("web", ["10.0.0.2"], "8"));
  const after = get("/endpoints", { "If-None-Match": etag });
  assert.equal(after.status, 200);
  assert.notEqual(after.headers.get("ETag"), etag);
  await after.body?.cancel();
});

Deno.test("a slice event that changes no endpoint keeps the view, its ETag and its body", () => {
  const { cache, store } = setup();
  store.replace([sliceFor("web", ["10.0.0.1"], "5")], "5");
  const before = cache.view("ns", "web")!;
  store.apply("MODIFIED", sliceFor("web", ["10.0.0.1"], "6"));
  assert.equal(cache.view("ns", "web"), before);
});

Deno.test("a DELETED slice drops its endpoints", async () => {
  const { store, get } = setup();
  store.replace([sliceFor("web", ["10.0.0.1"], "5")], "5");
  store.apply("DELETED", sliceFor("web", ["10.0.0.1"], "6"));
  assert.deepEqual((await get("/endpoints").json()).subsets, []);
});

Deno.test("unknown paths get 404 JSON and wrong methods 405 with Allow", async () => {
  const { get } = setup();
  const nf = get("/nope");
  assert.equal(nf.status, 404);
  assert.match((await nf.json()).error, /no route "\/nope"/);
  const na = get("/endpoints", {}, "POST");
  assert.equal(na.status, 405);
  assert.equal(na.headers.get("Allow"), "GET, HEAD");
  await na.body?.cancel();
});
