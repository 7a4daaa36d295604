/** This Pod in the /v1 answers over a cache driven by hand: marks, its state, `?exclude=self` in
 * plain answers, ETags, blocking queries and SSE, and a contradicting identity logged once. */
import assert from "node:assert/strict";
import { createApi } from "../../lib/routes/v1.ts";
import { createHandler } from "../../lib/routes/table.ts";
import { EndpointCache } from "../../lib/cache.ts";
import type { ServiceView } from "../../lib/service_view.ts";
import { HealthRegistry } from "../../lib/health.ts";
import { OpenWatchers } from "../../lib/open_watchers.ts";
import type { Logger } from "../../lib/log.ts";
import type { PodIdentity } from "../../lib/self.ts";
import { SelfViews } from "../../lib/self_view.ts";
import { prng } from "../support/history/schedule.ts";
import { podSlice } from "../support/slices.ts";
import { streamReader } from "../support/stream_text.ts";

type Pod = { name: string; ip: string; ready?: boolean };

/** Service web's slice web-a, as the tests below list it (port http 8080). */
const WEB = { name: "web-a", port: 8080 };

const ME: PodIdentity = { name: "web-0", namespace: "ns", ips: ["10.0.0.1"] };

function setup(pod: PodIdentity | undefined = ME) {
  const cache = new EndpointCache(new Map([["ns", { kind: "names", names: ["web"] } as const]]));
  const lines: Record<string, unknown>[] = [];
  const log: Logger = {
    enabled: () => true,
    log: (level, msg, f) => lines.push({ level, msg, ...f }),
  };
  const drain = new AbortController();
  const api = createApi(cache, {
    self: {},
    watchers: new OpenWatchers(10),
    health: new HealthRegistry(),
    signal: drain.signal,
    log,
    pod,
  });
  const get = async (path: string, init: RequestInit = {}) => {
    const [route, search] = path.split("?");
    const resp = await api(new Request(`http://x${path}`, init), route!, search)!;
    const text = await resp.text();
    return { status: resp.status, headers: resp.headers, text, json: () => JSON.parse(text) };
  };
  return { cache, store: cache.sliceStore("ns"), api, get, lines, drain };
}

const peers = (pods: Pod[]) => pods.filter((p) => p.name !== "web-0");
const THREE: Pod[] = [
  { name: "web-0", ip: "10.0.0.1" },
  { name: "web-1", ip: "10.0.0.2" },
  { name: "web-2", ip: "10.0.0.3" },
];
/** THREE with this Pod (web-0) not ready. */
const NOT_READY_SELF: Pod[] = [{ ...THREE[0]!, ready: false }, ...peers(THREE)];

Deno.test("the body marks this Pod's endpoint and says its state; /v1/services says it too", async () => {
  const { store, get } = setup();
  store.replace([podSlice(THREE, { ...WEB, rv: "10" })], "10");
  const body = (await get("/v1/services/ns/web?state=all")).json();
  assert.equal(body.self, "ready");
  assert.deepEqual(
    body.endpoints.map((e: { addresses: string[]; self?: boolean }) => [e.addresses[0], e.self]),
    [["10.0.0.1", true], ["10.0.0.2", undefined], ["10.0.0.3", undefined]],
  );
  assert.equal((await get("/v1/services")).json().services[0].self, "ready");
  store.apply("MODIFIED", podSlice(NOT_READY_SELF, { ...WEB, rv: "11" }));
  const notReady = (await get("/v1/services/ns/web")).json();
  assert.equal(notReady.self, "not-ready", "the state is this Pod's even when the filter hides it");
  assert.equal(notReady.endpoints.length, 2);
  store.apply("MODIFIED", podSlice(peers(THREE), { ...WEB, rv: "12" }));
  assert.equal((await get("/v1/services/ns/web")).json().self, "not-listed");
});

Deno.test("exclude=self leaves this Pod out; its own flip moves ETag and index only for clients that see it", async () => {
  const { store, get } = setup();
  store.replace([podSlice(THREE, { ...WEB, rv: "10" })], "10");
  const path = "/v1/services/ns/web?exclude=self&port=http";
  const before = await get(path);
  const body = before.json();
  assert.deepEqual(body.targets, ["10.0.0.2:8080", "10.0.0.3:8080"]);
  assert.equal(body.self, undefined, "an answer without this Pod does not say its state");
  assert.equal(before.headers.get("x-discovery-index"), "10");
  const all = await get("/v1/services/ns/web?port=http");
  store.apply("MODIFIED", podSlice(NOT_READY_SELF, { ...WEB, rv: "11" }));
  const after = await get(path);
  assert.equal(after.text, before.text);
  assert.equal(after.headers.get("etag"), before.headers.get("etag"));
  assert.equal(after.headers.get("x-discovery-index"), "10");
  const etag = before.headers.get("etag")!;
  assert.equal((await get(path, { headers: { "If-None-Match": etag } })).status, 304);
  const allAfter = await get("/v1/services/ns/web?port=http");
  assert.notEqual(allAfter.headers.get("etag"), all.headers.get("etag"));
  assert.equal(allAfter.headers.get("x-discovery-index"), "11");
  // A peer's change moves it for everyone, to the index of that change.
  store.apply(
    "MODIFIED",
    podSlice([{ ...THREE[0]!, ready: false }, THREE[1]!], { ...WEB, rv: "12" }),
  );
  const peerChange = await get(path);
  assert.equal(peerChange.headers.get("x-discovery-index"), "12");
  assert.deepEqual(peerChange.json().targets, ["10.0.0.2:8080"]);
  // This Pod leaving, peers unchanged: no change for the excluded client.
  store.apply("MODIFIED", podSlice([THREE[1]!], { ...WEB, rv: "13" }));
  assert.equal((await get(path)).headers.get("x-discovery-index"), "12");
  // The text form a shell script reads (docs/api.md, "Forming a cluster").
  const text = await get("/v1/services/ns/web?exclude=self&port=http&format=text");
  assert.equal(text.text, "10.0.0.2:8080\n");
  assert.equal(text.headers.get("x-discovery-index"), "12");
});

Deno.test("a blocking query with exclude=self sleeps through this Pod's flip; one without wakes", async () => {
  const { store, api } = setup();
  store.replace([podSlice(THREE, { ...WEB, rv: "10" })], "10");
  const ask = (q: string) => {
    const path = `/v1/services/ns/web${q}`;
    return Promise.resolve(api(new Request(`http://x${path}`), "/v1/services/ns/web", q.slice(1))!);
  };
  let excludedDone = false;
  const excluded = ask("?exclude=self&index=10&wait=5s").then(async (r) => {
    excludedDone = true;
    return { index: r.headers.get("x-discovery-index"), body: JSON.parse(await r.text()) };
  });
  const seeing = ask("?index=10&wait=5s");
  store.apply("MODIFIED", podSlice(NOT_READY_SELF, { ...WEB, rv: "11" }));
  const woken = await seeing;
  assert.equal(woken.headers.get("x-discovery-index"), "11");
  assert.equal(JSON.parse(await woken.text()).self, "not-ready");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(excludedDone, false, "this Pod's flip did not wake the excluded query");
  store.apply(
    "MODIFIED",
    podSlice([{ ...THREE[0]!, ready: false }, THREE[1]!], { ...WEB, rv: "12" }),
  );
  const answer = await excluded;
  assert.equal(answer.index, "12");
  assert.deepEqual(answer.body.endpoints.map((e: { addresses: string[] }) => e.addresses[0]), [
    "10.0.0.2",
  ]);
});

Deno.test("an SSE stream with exclude=self gets no event for this Pod's flip, and the next peer change", async () => {
  const { store, api, drain } = setup();
  store.replace([podSlice(THREE, { ...WEB, rv: "10" })], "10");
  const path = "/v1/watch/ns/web";
  const excluded = streamReader(
    await api(new Request(`http://x${path}?exclude=self`), path, "exclude=self")!,
  );
  const seeing = streamReader(await api(new Request(`http://x${path}`), path)!);
  assert.match(await excluded(/^id: 10$/m), /event: snapshot/);
  assert.match(await seeing(/^id: 10$/m), /"self":"ready"/);
  store.apply("MODIFIED", podSlice(NOT_READY_SELF, { ...WEB, rv: "11" }));
  assert.match(await seeing(/^id: 11$/m), /"self":"not-ready"/);
  store.apply(
    "MODIFIED",
    podSlice([{ ...THREE[0]!, ready: false }, THREE[1]!], { ...WEB, rv: "12" }),
  );
  const next = await excluded(/^id: \d+$/m);
  assert.match(next, /event: update\nid: 12\n/, "the flip (11) was no event for it");
  assert.doesNotMatch(next, /"self"|10\.0\.0\.1/);
  drain.abort();
});

Deno.test("without an identity exclude=self answers 400 naming the settings, and the state is unknown", async () => {
  const { store, get } = setup({ ips: [] });
  store.replace([podSlice(THREE, { ...WEB, rv: "10" })], "10");
  const r = await get("/v1/services/ns/web?exclude=self");
  assert.equal(r.status, 400);
  assert.match(r.json().error, /POD_NAME and POD_NAMESPACE/);
  assert.equal((await get("/v1/watch/ns/web?exclude=self")).status, 400);
  const body = (await get("/v1/services/ns/web")).json();
  assert.equal(body.self, "unknown");
  assert.ok(body.endpoints.every((e: { self?: boolean }) => e.self === undefined));
  assert.equal((await get("/v1/services/ns/web?exclude=me")).status, 400);
});

Deno.test("an IP setting that contradicts this Pod's endpoint is logged once at warn; the endpoint stays this Pod", async () => {
  const { store, get, lines } = setup({ ...ME, ips: ["10.9.9.9"] });
  store.replace([podSlice(THREE, { ...WEB, rv: "10" })], "10");
  store.apply("MODIFIED", podSlice(NOT_READY_SELF, { ...WEB, rv: "11" }));
  store.apply("MODIFIED", podSlice(THREE, { ...WEB, rv: "12" }));
  const body = (await get("/v1/services/ns/web?exclude=self")).json();
  assert.deepEqual(body.endpoints.map((e: { addresses: string[] }) => e.addresses[0]), [
    "10.0.0.2",
    "10.0.0.3",
  ]);
  const warns = lines.filter((l) => l.level === "warn");
  assert.equal(warns.length, 1, JSON.stringify(lines));
  assert.equal(warns[0]!.msg, "pod identity contradicts an endpoint");
  assert.equal(warns[0]!.service, "ns/web");
});

Deno.test("the view without this Pod is made once per change and shared: its memo is the peers view", () => {
  const cache = new EndpointCache(new Map([["ns", { kind: "names", names: ["web"] } as const]]));
  const selves = new SelfViews(cache, { identity: ME });
  const announced: ServiceView[][] = [];
  selves.excluded.subscribe((changed) => announced.push(changed));
  const store = cache.sliceStore("ns");
  store.replace([podSlice(THREE, { ...WEB, rv: "10" })], "10");
  const first = cache.view("ns", "web")!;
  assert.equal(selves.of(first), selves.of(first), "computed once per view");
  store.apply("MODIFIED", podSlice(NOT_READY_SELF, { ...WEB, rv: "11" }));
  const second = cache.view("ns", "web")!;
  assert.notEqual(second, first);
  assert.equal(selves.of(second).peers, selves.of(first).peers);
  assert.equal(selves.excluded.view("ns", "web"), selves.of(first).peers);
  assert.equal(announced.length, 1, "only the first view announced to excluded clients");
  // A peer's change in another slice: the peers view moves.
  store.apply(
    "ADDED",
    podSlice([{ name: "web-3", ip: "10.0.0.4" }], { ...WEB, rv: "12", name: "web-b" }),
  );
  assert.equal(announced.length, 2);
  assert.equal(announced[1]![0]!.index, 12);
});

Deno.test("over a seeded random sequence the view without this Pod is exactly the others, and moves exactly when they change", () => {
  const seed = Number(Deno.env.get("SELF_SEED")) || Math.floor(Math.random() * 2 ** 31);
  console.log(`seed ${seed} (replay with SELF_SEED=${seed})`);
  const rand = prng(seed);
  const cache = new EndpointCache(new Map([["ns", { kind: "names", names: ["web"] } as const]]));
  const selves = new SelfViews(cache, { identity: ME });
  const store = cache.sliceStore("ns");
  // Pods web-0 (this one) to web-7 in three slices; each step flips, moves, drops or adds one
  // to three of them, and writes the slices it touched (and sometimes one it did not), one
  // event each: an event may change this Pod and peers at once.
  const pods = new Map<string, Pod & { slice: string }>();
  const names = ["a", "b", "c"];
  for (let i = 0; i < 8; i++) {
    pods.set(`web-${i}`, { name: `web-${i}`, ip: `10.0.0.${i + 1}`, slice: names[i % 3]! });
  }
  const sliceOf = (s: string, rv: string) =>
    podSlice([...pods.values()].filter((p) => p.slice === s), { ...WEB, rv, name: `web-${s}` });
  store.replace(names.map((s) => sliceOf(s, "10")), "10");
  const peersOf = (v: ServiceView) =>
    JSON.stringify(v.endpoints.filter((e) => e.targetRef?.name !== "web-0"));
  let rv = 10;
  let before = cache.view("ns", "web")!;
  for (let step = 0; step < 400; step++) {
    const touched = new Set<string>();
    const pick = () => names[Math.floor(rand() * 3)]!;
    for (let n = 1 + Math.floor(rand() * 3); n > 0; n--) {
      const name = `web-${Math.floor(rand() * 8)}`;
      const p = pods.get(name);
      const op = rand();
      if (!p) {
        const at = pick();
        pods.set(name, { name, ip: `10.0.0.${Number(name.slice(4)) + 1}`, slice: at });
        touched.add(at);
      } else if (op < 0.6) {
        p.ready = !(p.ready ?? true);
        touched.add(p.slice);
      } else if (op < 0.8) {
        touched.add(p.slice);
        touched.add(p.slice = pick());
      } else {
        pods.delete(name);
        touched.add(p.slice);
      }
    }
    if (rand() < 0.3) touched.add(pick());
    for (const s of touched) {
      const where = `seed ${seed}, step ${step}, slice ${s}`;
      store.apply("MODIFIED", sliceOf(s, String(++rv)));
      const view = cache.view("ns", "web")!;
      if (view === before) continue;
      const info = selves.of(view);
      const own = view.endpoints.filter((e) => e.targetRef?.name === "web-0");
      assert.deepEqual([...info.endpoints], own, where);
      assert.equal(JSON.stringify(info.peers.endpoints), peersOf(view), where);
      const was = selves.of(before).peers;
      if (peersOf(view) !== peersOf(before)) assert.ok(info.peers.index > was.index, where);
      else assert.equal(info.peers, was, `${where}: the others are as they were, yet it moved`);
      before = view;
    }
  }
});

Deno.test("the Go service's /endpoints is byte for byte the same with and without this Pod's identity", async () => {
  const serve = async (pod: PodIdentity | undefined) => {
    const cache = new EndpointCache(new Map([["ns", { kind: "names", names: ["web"] } as const]]));
    const handler = createHandler(cache, { primary: { namespace: "ns", name: "web" }, pod });
    const store = cache.sliceStore("ns");
    store.replace([podSlice(THREE, { ...WEB, rv: "10" })], "10");
    const out: string[] = [];
    const read = async () => {
      // Marks made first, as a /v1 client would, so that the Go route reads after them.
      await (await handler(new Request("http://x/v1/services/ns/web?exclude=self"))).text();
      const r = await handler(new Request("http://x/endpoints"));
      out.push(
        `${r.status} ${r.headers.get("content-type")} ${r.headers.get("x-discovery-index")}`,
      );
      out.push(await r.text());
    };
    await read();
    store.apply("MODIFIED", podSlice(NOT_READY_SELF, { ...WEB, rv: "11" }));
    await read();
    return out;
  };
  const mine = await serve(ME);
  assert.match(mine[1]!, /10\.0\.0\.1/);
  assert.deepEqual(mine, await serve(undefined));
});
