/** The /v1 API over a scripted cache: one ETag one body, 404 for what is not watched, blocking
 * queries that end on removal and on shutdown with a complete answer. */
import assert from "node:assert/strict";
import { EndpointCache } from "../../lib/cache.ts";
import type { WatchedServices } from "../../lib/selection.ts";
import { HealthRegistry, WatchHealth } from "../../lib/health.ts";
import { sliceFor as slice } from "../support/slices.ts";
import { createHandler } from "../../lib/routes/table.ts";

function setup(watched: WatchedServices, primary?: string) {
  const cache = new EndpointCache(new Map([["ns", watched]]));
  const health = new HealthRegistry();
  const watch = new WatchHealth({ namespace: "ns", resource: "endpointslices" });
  health.add(watch);
  const drain = new AbortController();
  const handler = createHandler(cache, {
    health,
    signal: drain.signal,
    primary: primary ? { namespace: "ns", name: primary } : undefined,
  });
  const get = async (path: string, headers: HeadersInit = {}) => {
    const r = await handler(new Request(`http://localhost${path}`, { headers }));
    return { status: r.status, headers: r.headers, body: await r.text() };
  };
  const store = cache.sliceStore("ns");
  watch.heard();
  return { cache, get, store, drain };
}

/** Records every (ETag, body) pair seen and fails when one ETag shows two bodies, or when a
 * route answers anything but 200 (a route regressed to 503 would otherwise check nothing). */
function etagLedger() {
  const seen = new Map<string, string>();
  return (path: string, r: { status: number; headers: Headers; body: string }) => {
    assert.equal(r.status, 200, `${path}: ${r.body}`);
    const tag = `${path} ${r.headers.get("etag")}`;
    const before = seen.get(tag);
    assert.ok(before === undefined || before === r.body, `${tag} named two bodies`);
    seen.set(tag, r.body);
  };
}

Deno.test("swapping one Service for another gives /v1/services a new ETag", async () => {
  const { get, store } = setup({ kind: "all" });
  store.replace([slice("a", ["10.0.0.1"], "100"), slice("b", ["10.0.0.2"], "200")], "200");
  const before = await get("/v1/services");
  store.apply("DELETED", slice("a", [], "201"));
  store.apply("ADDED", slice("c", ["10.0.0.1"], "150"));
  const after = await get("/v1/services");
  assert.notEqual(after.body, before.body);
  assert.notEqual(after.headers.get("etag"), before.headers.get("etag"));
  assert.equal(
    (await get("/v1/services", { "If-None-Match": before.headers.get("etag")! })).status,
    200,
  );
  // A change that arrives later with a lower resourceVersion (another namespace's watch was
  // ahead) gets an index past every one handed out, never below: the tag moves too.
  const third = await get("/v1/services");
  store.apply("MODIFIED", slice("c", ["10.0.0.9"], "180"));
  const fourth = await get("/v1/services");
  assert.ok(JSON.parse(fourth.body).index > JSON.parse(third.body).index);
  assert.notEqual(fourth.body, third.body);
  assert.notEqual(fourth.headers.get("etag"), third.headers.get("etag"));
});

Deno.test("across a scripted history one ETag never names two bodies on any route", async () => {
  const { get, store } = setup({ kind: "names", names: ["web", "db"] }, "web");
  const check = etagLedger();
  const paths = [
    "/endpoints",
    "/v1/services",
    "/v1/services/ns/web",
    "/v1/services/ns/web?state=all",
  ];
  const look = async () => {
    for (const p of paths) check(p, await get(p));
  };
  store.replace([slice("web", ["10.0.0.1"], "5")], "10");
  await look();
  store.apply("MODIFIED", slice("web", ["10.0.0.2"], "11"));
  await look();
  store.apply("ADDED", slice("db", ["10.0.1.1"], "12"));
  await look();
  // A restored store: back to rv 10 with the first state.
  store.replace([slice("web", ["10.0.0.1"], "5")], "10");
  await look();
  store.apply("MODIFIED", slice("web", ["10.0.0.2"], "11"));
  await look();
});

Deno.test("ETags name the process: a tag starts with this process's epoch, which another process does not share", async () => {
  const one = setup({ kind: "all" });
  one.store.replace([slice("a", ["10.0.0.1"], "5")], "10");
  const tag = (await one.get("/v1/services/ns/a")).headers.get("etag")!;
  const epoch = tag.slice(1).split(".")[0];
  const { PROCESS_EPOCH } = await import("../../lib/etag.ts");
  assert.equal(epoch, PROCESS_EPOCH);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { PROCESS_EPOCH } from "${new URL(
        "../../lib/etag.ts",
        import.meta.url,
      )}"; console.log(PROCESS_EPOCH)`,
    ],
  }).outputSync();
  const other = new TextDecoder().decode(child.stdout).trim();
  assert.ok(other.length > 0);
  assert.notEqual(other, epoch);
});

Deno.test("an unknown namespace answers 404 naming what is watched, not 503 forever", async () => {
  const { get, store } = setup({ kind: "names", names: ["web"] });
  store.replace([], "10");
  for (const path of ["/v1/services/elsewhere/web", "/v1/services/elsewhere/web?index=3"]) {
    const r = await get(path);
    assert.equal(r.status, 404, path);
    assert.match(JSON.parse(r.body).error, /namespace elsewhere is not watched.*ns\/web/);
  }
});

Deno.test("a mistyped name in all-services mode answers 404 naming what is watched", async () => {
  const { get, store } = setup({ kind: "all" });
  store.replace([slice("web", ["10.0.0.1"], "5")], "10");
  const r = await get("/v1/services/ns/wbe");
  assert.equal(r.status, 404);
  assert.match(JSON.parse(r.body).error, /ns\/wbe.*no EndpointSlices.*every Service of ns/);
});

Deno.test("a named Service that does not exist yet is served empty and ready, the same body each time", async () => {
  const { get, store } = setup({ kind: "names", names: ["web"] });
  store.replace([], "10");
  const a = await get("/v1/services/ns/web");
  const b = await get("/v1/services/ns/web");
  assert.equal(a.status, 200);
  assert.equal(a.body, b.body, "lastUpdated does not change per request");
  assert.deepEqual(JSON.parse(a.body).endpoints, []);
});

Deno.test("a blocking query on a Service that is removed ends at once with 404 saying it is gone", async () => {
  const { get, store } = setup({ kind: "all" });
  store.replace([slice("web", ["10.0.0.1"], "5")], "10");
  const held = get("/v1/services/ns/web?index=10&wait=60s");
  await new Promise((r) => setTimeout(r, 10));
  store.apply("DELETED", slice("web", [], "11"));
  const r = await held;
  assert.equal(r.status, 404);
  assert.match(JSON.parse(r.body).error, /ns\/web is gone/);
  assert.equal(r.headers.get("x-discovery-index"), "11");
  const list = JSON.parse((await get("/v1/services")).body);
  assert.deepEqual(list.services, []);
  assert.equal(list.index, 11);
});

Deno.test("a blocking query held at shutdown ends with the current state, complete", async () => {
  const { get, store, drain } = setup({ kind: "names", names: ["web"] });
  store.replace([slice("web", ["10.0.0.1"], "5")], "10");
  const held = get("/v1/services/ns/web?index=10&wait=60s");
  await new Promise((r) => setTimeout(r, 10));
  drain.abort();
  const r = await held;
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).endpoints[0].addresses[0], "10.0.0.1");
  assert.equal(r.headers.get("x-discovery-index"), "10");
});

Deno.test("/v1/services counts ready, serving and terminating endpoints", async () => {
  const { get, store } = setup({ kind: "all" });
  const s = slice("web", ["10.0.0.1", "10.0.0.2", "10.0.0.3"], "5");
  s.endpoints![1]!.conditions = { ready: false, serving: true, terminating: true };
  s.endpoints![2]!.conditions = { ready: false, serving: false, terminating: true };
  store.replace([s], "10");
  const list = JSON.parse((await get("/v1/services")).body);
  assert.deepEqual(list.services[0].endpoints, { ready: 1, serving: 2, terminating: 2, total: 3 });
});

Deno.test("a blocking query that arrives after the drain began answers at once with the current state", async () => {
  const { get, store, drain } = setup({ kind: "names", names: ["web"] });
  store.replace([slice("web", ["10.0.0.1"], "5")], "10");
  drain.abort();
  const started = performance.now();
  const r = await get("/v1/services/ns/web?index=10&wait=60s");
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-discovery-index"), "10");
  assert.ok(performance.now() - started < 1_000, "not held for its wait");
});
