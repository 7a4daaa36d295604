/** The endpoint cache on scripted lists and events: tombstones, a monotonic index, one view. */
import assert from "node:assert/strict";
import { EndpointCache } from "../../lib/cache.ts";
import type { WatchedServices } from "../../lib/selection.ts";
import type { ServiceView } from "../../lib/service_view.ts";
import { createLogger } from "../../lib/log.ts";
import { sliceFor as slice } from "../support/slices.ts";

function service(name: string, uid: string, rv: string) {
  return { metadata: { name, uid, resourceVersion: rv } };
}

function setup(watched: WatchedServices) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger("debug", { write: (l) => lines.push(JSON.parse(l)) });
  const cache = new EndpointCache(new Map([["ns", watched]]), { log });
  const events: ServiceView[][] = [];
  cache.subscribe((changed) => events.push(changed));
  return { cache, events, lines, store: cache.sliceStore("ns") };
}

const names = (vs: ServiceView[]) => vs.map((v) => `${v.name}${v.removed ? " removed" : ""}`);

Deno.test("in all-services mode a Service that loses its last slice is announced once as a tombstone and dropped", () => {
  const { cache, events, store } = setup({ kind: "all" });
  store.replace([slice("a", ["10.0.0.1"], "5"), slice("b", ["10.0.0.2"], "6")], "10");
  assert.deepEqual(cache.views().map((v) => v.name), ["a", "b"]);
  events.length = 0;
  store.apply("DELETED", slice("a", ["10.0.0.1"], "11"));
  assert.deepEqual(events.map(names), [["a removed"]]);
  assert.equal(events[0]![0]!.index, 11, "the tombstone carries the index of the change");
  assert.deepEqual(cache.views().map((v) => v.name), ["b"]);
  assert.equal(cache.view("ns", "a"), undefined);
  // A later relist without it announces nothing more.
  store.replace([slice("b", ["10.0.0.2"], "6")], "12");
  assert.equal(events.length, 1);
});

Deno.test("1,000 Services created and deleted in all-services mode leave nothing listed", () => {
  const { cache, events, store } = setup({ kind: "all" });
  store.replace([], "1");
  for (let i = 0; i < 1000; i++) store.apply("ADDED", slice(`s${i}`, ["10.0.0.1"], `${2 + i}`));
  assert.equal(cache.views().length, 1000);
  for (let i = 0; i < 1000; i++) store.apply("DELETED", slice(`s${i}`, [], `${2000 + i}`));
  assert.equal(cache.views().length, 0);
  assert.equal(events.flat().filter((v) => v.removed).length, 1000);
});

Deno.test("in selector mode a Service that leaves the selector or is deleted is announced as a tombstone", () => {
  const { cache, events, store } = setup({ kind: "selector", selector: "tier=db" });
  const services = cache.serviceStore("ns");
  services.replace([service("a", "u1", "3"), service("b", "u2", "4")], "4");
  store.replace([slice("a", ["10.0.0.1"], "5"), slice("b", ["10.0.0.2"], "6")], "10");
  assert.deepEqual(cache.views().map((v) => v.name), ["a", "b"]);
  events.length = 0;
  // Relabelled out of the selector: the watch says DELETED.
  services.apply("DELETED", service("a", "u1", "12"));
  assert.deepEqual(events.map(names), [["a removed"]]);
  assert.equal(events[0]![0]!.index, 12);
  assert.deepEqual(cache.views().map((v) => v.name), ["b"]);
  assert.equal(cache.watches("ns", "a"), false);
  // Its slices going later announce nothing.
  store.apply("DELETED", slice("a", [], "13"));
  assert.equal(events.length, 1);
});

Deno.test("in names mode a watched Service that loses its last slice stays, empty and ready, as an update", () => {
  const { cache, events, store } = setup({ kind: "names", names: ["web"] });
  store.replace([slice("web", ["10.0.0.1"], "5")], "10");
  events.length = 0;
  store.apply("DELETED", slice("web", [], "11"));
  assert.deepEqual(events.map(names), [["web"]]);
  const view = cache.view("ns", "web")!;
  assert.equal(view.removed, false);
  assert.deepEqual(view.endpoints, []);
  assert.equal(view.index, 11);
});

Deno.test("a named Service with no EndpointSlices is served empty, the same view each time, and logged once", () => {
  const { cache, lines, store } = setup({ kind: "names", names: ["web"] });
  store.replace([], "10");
  const first = cache.view("ns", "web")!;
  assert.equal(cache.view("ns", "web"), first, "no fresh view per request");
  store.replace([], "12");
  assert.equal(cache.view("ns", "web"), first, "an unchanged relist keeps the view");
  const said = lines.filter((l) => l.msg === "watched Service has no EndpointSlices");
  assert.equal(said.length, 1);
  assert.equal(said[0]!.service, "ns/web");
});

Deno.test("in all-services mode a name with no slices is not a view and is not made up per request", () => {
  const { cache, store } = setup({ kind: "all" });
  store.replace([slice("a", ["10.0.0.1"], "5")], "10");
  assert.equal(cache.view("ns", "typo"), undefined);
  assert.equal(cache.watchesNamespace("ns"), true);
  assert.equal(cache.watchesNamespace("other"), false);
  assert.equal(cache.watches("other", "a"), false);
});

Deno.test("the index never goes backwards across a relist older than what was served, and that relist is logged", () => {
  const { cache, events, lines, store } = setup({ kind: "all" });
  store.replace([slice("a", ["10.0.0.1"], "5"), slice("b", ["10.0.0.2"], "6")], "10");
  store.apply("MODIFIED", slice("a", ["10.0.0.3"], "30"));
  assert.equal(cache.view("ns", "a")!.index, 30);
  assert.equal(cache.index, 30);
  // An etcd restore: the store itself went back to 20, with a's endpoints as before.
  store.replace([slice("a", ["10.0.0.1"], "5"), slice("b", ["10.0.0.2"], "6")], "20");
  const a = cache.view("ns", "a")!;
  assert.deepEqual(a.endpoints.map((e) => e.addresses[0]), ["10.0.0.1"]);
  assert.ok(a.index > 30, `index ${a.index} moved forward`);
  assert.equal(cache.view("ns", "b")!.index, 10, "unchanged b keeps its view");
  assert.ok(cache.index >= a.index);
  const warn = lines.find((l) =>
    l.level === "warn" && l.msg === "relist is older than the served view"
  );
  assert.ok(warn, JSON.stringify(lines));
  assert.equal(warn.resourceVersion, "20");
  // Every index a listener saw, per Service, only grew.
  const seen = new Map<string, number>();
  for (const v of events.flat()) {
    assert.ok(v.index > (seen.get(v.name) ?? 0), `${v.name} at ${v.index}`);
    seen.set(v.name, v.index);
  }
});

Deno.test("the list index never goes back when the Service with the highest index is removed", () => {
  const { cache, store } = setup({ kind: "all" });
  store.replace([slice("a", ["10.0.0.1"], "5"), slice("b", ["10.0.0.2"], "6")], "10");
  store.apply("MODIFIED", slice("a", ["10.0.0.3"], "30"));
  const before = cache.index;
  store.apply("DELETED", slice("a", [], "31"));
  assert.ok(cache.index >= before);
});

Deno.test("a relist that leaves a Service's endpoints unchanged does not move its view", () => {
  const { cache, events, store } = setup({ kind: "all" });
  store.replace([slice("a", ["10.0.0.1"], "5")], "10");
  const view = cache.view("ns", "a");
  const generation = cache.generation;
  events.length = 0;
  store.replace([slice("a", ["10.0.0.1"], "5")], "40");
  assert.equal(cache.view("ns", "a"), view);
  assert.equal(cache.generation, generation);
  assert.equal(events.length, 0);
});

Deno.test("a relist where the controller renamed a slice with the same endpoints does not move the view", () => {
  const { cache, events, store } = setup({ kind: "all" });
  store.replace([slice("a", ["10.0.0.1", "10.0.0.2"], "5", "a-old")], "10");
  const view = cache.view("ns", "a");
  events.length = 0;
  store.replace([slice("a", ["10.0.0.1", "10.0.0.2"], "41", "a-new")], "42");
  assert.equal(cache.view("ns", "a"), view);
  assert.equal(events.length, 0);
  // The old slice is gone for good: deleting the new one empties the Service.
  store.apply("DELETED", slice("a", [], "43", "a-new"));
  assert.deepEqual(events.map(names), [["a removed"]]);
});

Deno.test("a slice relabelled to another Service moves its endpoints with it", () => {
  const { cache, events, store } = setup({ kind: "all" });
  store.replace([slice("a", ["10.0.0.1"], "5", "s1"), slice("b", ["10.0.0.2"], "6", "s2")], "10");
  events.length = 0;
  store.apply("MODIFIED", slice("b", ["10.0.0.1"], "11", "s1"));
  assert.deepEqual(events.map(names), [["a removed", "b"]]);
  assert.deepEqual(cache.view("ns", "b")!.endpoints.map((e) => e.addresses[0]), [
    "10.0.0.1",
    "10.0.0.2",
  ]);
});

Deno.test("the generation moves on every change to the set of views, a swap included", () => {
  const { cache, store } = setup({ kind: "all" });
  store.replace([slice("a", ["10.0.0.1"], "100"), slice("b", ["10.0.0.2"], "200")], "200");
  const g1 = cache.generation;
  store.apply("DELETED", slice("a", [], "201"));
  store.apply("ADDED", slice("c", ["10.0.0.1"], "202"));
  assert.notEqual(cache.generation, g1);
  assert.deepEqual(cache.views().map((v) => v.name), ["b", "c"]);
});

Deno.test("a listener that throws is logged and does not stop the other listeners or the cache", () => {
  const { cache, events, lines, store } = setup({ kind: "all" });
  cache.subscribe(() => {
    throw new Error("listener bug");
  });
  const after: ServiceView[][] = [];
  cache.subscribe((c) => after.push(c));
  store.replace([slice("a", ["10.0.0.1"], "5")], "10");
  assert.equal(events.length, 1);
  assert.equal(after.length, 1);
  assert.equal(cache.view("ns", "a")!.endpoints.length, 1);
  assert.ok(lines.some((l) => l.msg === "change listener failed" && l.error === "listener bug"));
});

Deno.test("what is watched is described in one short line, however many names", () => {
  const many = Array.from({ length: 400 }, (_, i) => `svc-${i}`);
  const { cache } = setup({ kind: "names", names: many });
  const text = cache.selection.describe();
  assert.match(text, /^ns\/svc-0, ns\/svc-1, .* and 390 more$/);
  assert.ok(text.length < 200, text);
  assert.equal(
    setup({ kind: "selector", selector: "tier=db" }).cache.selection.describe(),
    "Services of ns with tier=db",
  );
});
