/** SSE streams over a cache driven by hand: framing, coalescing, resume, reset and drain. */
import assert from "node:assert/strict";
import { createApi } from "../../lib/routes/v1.ts";
import { EndpointCache } from "../../lib/cache.ts";
import type { WatchedServices } from "../../lib/selection.ts";
import { HealthRegistry } from "../../lib/health.ts";
import { OpenWatchers } from "../../lib/open_watchers.ts";
import { RETRY_MS } from "../../lib/sse.ts";
import { slice } from "../support/slices.ts";
import { streamReader } from "../support/stream_text.ts";

function setup(
  plan: Map<string, WatchedServices> = new Map([["ns", { kind: "names", names: ["web"] }]]),
) {
  const cache = new EndpointCache(plan);
  const drain = new AbortController();
  const api = createApi(cache, {
    self: {},
    watchers: new OpenWatchers(10),
    health: new HealthRegistry(),
    signal: drain.signal,
  });
  const open = async (path: string, headers: Record<string, string> = {}) => {
    const resp = await api(new Request(`http://x${path}`, { headers }), path)!;
    return { resp, read: streamReader(resp) };
  };
  const raw = async (path: string) =>
    (await api(new Request(`http://x${path}`), path))!.body!.getReader();
  return { cache, store: cache.sliceStore("ns"), open, raw, drain };
}

Deno.test("a stream opened before the first list is 200, says retry and waits, then sends the snapshot", async () => {
  const { store, open, drain } = setup();
  const { resp, read } = await open("/v1/watch/ns/web");
  assert.equal(resp.status, 200);
  assert.equal(resp.headers.get("content-type"), "text/event-stream; charset=utf-8");
  assert.equal(await read(/\n\n/), `retry: ${RETRY_MS}\n: waiting for the first complete list\n\n`);
  store.replace([slice(["10.0.0.1"], { name: "a", rv: "5" })], "5");
  const snap = await read(/\n\n/, 3000);
  assert.match(snap, /^event: snapshot\nid: 5\ndata: \{"namespace":"ns","name":"web"/);
  drain.abort();
  assert.equal(await read("end"), "", "drain ends the stream");
});

Deno.test("a Service that is not configured is 404 before the first list too", async () => {
  const { open } = setup();
  assert.equal((await open("/v1/watch/ns/other")).resp.status, 404);
  assert.equal((await open("/v1/watch/elsewhere/web")).resp.status, 404);
});

Deno.test("a stream that does not read gets only the latest state when it reads again", async () => {
  const { store, open, drain } = setup();
  store.replace([slice(["10.0.0.1"], { name: "a", rv: "5" })], "5");
  const { read } = await open("/v1/watch/ns/web");
  await read(/event: snapshot[^]*\n\n/);
  for (let i = 2; i <= 6; i++) {
    const ips = Array.from({ length: i }, (_, k) => `10.0.0.${k + 1}`);
    store.apply("MODIFIED", slice(ips, { name: "a", rv: String(5 + i) }));
  }
  const text = await read(/\n\n/);
  assert.equal(text.match(/^event: /gm)?.length, 1, text);
  assert.match(text, /^event: update\nid: 11\n/);
  assert.equal(JSON.parse(text.split("data: ")[1]!).endpoints.length, 6);
  drain.abort();
});

Deno.test("a burst of changes to one Service within the pace reaches a waiting reader as its last state only", async () => {
  const { store, open, drain } = setup();
  store.replace([slice(["10.0.0.1"], { name: "a", rv: "5" })], "5");
  const { read } = await open("/v1/watch/ns/web");
  await read(/event: snapshot[^]*\n\n/);
  // The reader asks before the burst: unpaced, the first change alone would answer it.
  const next = read(/\n\n/);
  for (let i = 2; i <= 4; i++) {
    const ips = Array.from({ length: i }, (_, k) => `10.0.0.${k + 1}`);
    store.apply("MODIFIED", slice(ips, { name: "a", rv: String(5 + i) }));
    await new Promise((r) => setTimeout(r, 20));
  }
  const text = await next;
  assert.equal(text.match(/^event: /gm)?.length, 1, text);
  assert.equal(JSON.parse(text.split("data: ")[1]!).endpoints.length, 4);
  drain.abort();
});

Deno.test("a burst of changes within the pace reaches a waiting all-Services reader as its last state only", async () => {
  const { store, open, drain } = setup();
  store.replace([slice(["10.0.0.1"], { name: "a", rv: "5" })], "5");
  const { read } = await open("/v1/watch");
  await read(/event: snapshot[^]*\n\n/);
  // The reader asks before the burst: unpaced, the first change alone would answer it.
  const next = read(/\n\n/);
  for (let i = 2; i <= 4; i++) {
    const ips = Array.from({ length: i }, (_, k) => `10.0.0.${k + 1}`);
    store.apply("MODIFIED", slice(ips, { name: "a", rv: String(5 + i) }));
    await new Promise((r) => setTimeout(r, 20));
  }
  const text = await next;
  assert.equal(text.match(/^event: /gm)?.length, 1, text);
  assert.equal(JSON.parse(text.split("data: ")[1]!).endpoints.length, 4);
  drain.abort();
});

Deno.test("Last-Event-ID within the history resumes; older gets event: reset and a snapshot", async () => {
  const { store, open, drain } = setup();
  store.replace([slice(["10.0.0.1"], { name: "a", rv: "5" })], "5");
  store.apply("MODIFIED", slice(["10.0.0.1", "10.0.0.2"], { name: "a", rv: "7" }));
  const resumed = await open("/v1/watch/ns/web", { "Last-Event-ID": "6" });
  assert.match(await resumed.read(/event: update[^]*\n\n/), /event: update\nid: 7\n/);
  const old = await open("/v1/watch/ns/web", { "Last-Event-ID": "3" });
  const text = await old.read(/event: snapshot[^]*\n\n/);
  assert.match(text, /event: reset\ndata: \{"index":7,"reason":"Last-Event-ID is older/);
  assert.match(text, /event: snapshot\nid: 7\n/);
  drain.abort();
});

Deno.test("two streams with the same filters are handed the very same bytes", async () => {
  const { store, raw, drain } = setup();
  store.replace([slice(["10.0.0.1"], { name: "a", rv: "5" })], "5");
  const [a, b] = [await raw("/v1/watch/ns/web"), await raw("/v1/watch/ns/web")];
  const decoder = new TextDecoder();
  const nextEvent = async (r: ReadableStreamDefaultReader<Uint8Array>) => {
    for (;;) {
      const { value } = await r.read();
      if (decoder.decode(value).startsWith("event: ")) return value!;
    }
  };
  const [snapA, snapB] = [await nextEvent(a), await nextEvent(b)];
  assert.match(decoder.decode(snapA), /^event: snapshot\nid: 5\n/);
  assert.equal(snapA, snapB, "one Uint8Array shared by both streams, not two copies");
  store.apply("MODIFIED", slice(["10.0.0.1", "10.0.0.2"], { name: "a", rv: "6" }));
  const [updA, updB] = [await nextEvent(a), await nextEvent(b)];
  assert.match(decoder.decode(updA), /^event: update\nid: 6\n/);
  assert.equal(updA, updB, "one Uint8Array shared by both streams, not two copies");
  drain.abort();
  await Promise.all([a.cancel(), b.cancel()]);
});

Deno.test("a stream of a Service whose namespace has listed starts while another namespace has not", async () => {
  const { cache, store, open, drain } = setup(
    new Map<string, WatchedServices>([
      ["ns", { kind: "names", names: ["web"] }],
      ["other", { kind: "names", names: ["db"] }],
    ]),
  );
  const { read } = await open("/v1/watch/ns/web");
  assert.match(await read(/\n\n/), /: waiting for the first complete list/);
  store.replace([slice(["10.0.0.1"], { name: "a", rv: "5" })], "5");
  assert.equal(cache.ready, false, "the other namespace has not listed");
  assert.match(await read(/event: snapshot[^]*\n\n/), /^event: snapshot\nid: 5\n/);
  const late = await open("/v1/watch/ns/web");
  const text = await late.read(/event: snapshot[^]*\n\n/);
  assert.doesNotMatch(text, /waiting/, "a stream of a listed namespace does not say it waits");
  const all = await open("/v1/watch");
  assert.match(await all.read(/\n\n/), /: waiting for the first complete list/);
  cache.sliceStore("other").replace(
    [slice(["10.0.1.1"], { name: "d", rv: "6", service: "db" })],
    "6",
  );
  assert.match(
    await all.read(/id: 6[^]*\n\n/),
    /event: snapshot\nid: 5\n[^]*event: snapshot\nid: 6\n/,
  );
  drain.abort();
});

Deno.test("a stream waiting for the first list gets its snapshot as the list is stored, not at a later poll", async () => {
  const { store, open, drain } = setup();
  const { read } = await open("/v1/watch/ns/web");
  await read(/\n\n/);
  store.replace([slice(["10.0.0.1"], { name: "a", rv: "5" })], "5");
  // Today's code polled readiness every 250 ms; an event hands the snapshot over at once.
  assert.match(await read(/event: snapshot[^]*\n\n/, 30), /^event: snapshot\nid: 5\n/);
  drain.abort();
});

Deno.test("a stream that arrives after the drain began gets the state and then its end", async () => {
  const { store, open, drain } = setup();
  store.replace([slice(["10.0.0.1"], { name: "a", rv: "5" })], "5");
  drain.abort();
  const { read } = await open("/v1/watch/ns/web");
  // Reads to the end: the pattern never matches.
  const text = await read(/(?!)/);
  assert.match(text, /^retry: 1000\n\nevent: snapshot\nid: 5\n/);
});

Deno.test("a stream that arrives after the drain began, before the first list, ends at once", async () => {
  const { open, drain } = setup();
  drain.abort();
  const { read } = await open("/v1/watch/ns/web");
  assert.equal(await read(/(?!)/), `retry: ${RETRY_MS}\n: waiting for the first complete list\n\n`);
});

Deno.test("an all-Services stream resumed after a change of one namespace gets a later change of another namespace with an older resourceVersion", async () => {
  const { cache, store, open, drain } = setup(
    new Map<string, WatchedServices>([
      ["ns", { kind: "names", names: ["web"] }],
      ["other", { kind: "names", names: ["db"] }],
    ]),
  );
  const other = cache.sliceStore("other");
  store.replace([slice(["10.0.0.1"], { name: "a", rv: "1900" })], "1900");
  other.replace([slice(["10.0.1.1"], { name: "d", rv: "1901", service: "db" })], "1901");
  const first = await open("/v1/watch");
  await first.read(/id: 1901[^]*\n\n/);
  // ns's watch is ahead of other's: 2000 arrives first, then other's 1995.
  store.apply("MODIFIED", slice(["10.0.0.1", "10.0.0.2"], { name: "a", rv: "2000" }));
  const ids: number[] = [];
  const seen = await first.read(/event: update[^]*\n\n/);
  for (const m of seen.matchAll(/^id: (\d+)$/gm)) ids.push(Number(m[1]));
  other.apply(
    "MODIFIED",
    slice(["10.0.1.1", "10.0.1.2"], { name: "d", rv: "1995", service: "db" }),
  );
  const next = await first.read(/event: update[^]*\n\n/);
  for (const m of next.matchAll(/^id: (\d+)$/gm)) ids.push(Number(m[1]));
  assert.deepEqual([...ids].sort((a, b) => a - b), ids, `ids go back: ${ids}`);
  // A client that saw only the first change resumes from its id.
  const resumed = await open("/v1/watch", { "Last-Event-ID": String(ids[0]) });
  const text = await resumed.read(/"name":"db"[^]*\n\n/);
  assert.doesNotMatch(text, /event: reset/);
  assert.match(text, /event: update\nid: \d+\ndata: \{"namespace":"other","name":"db"/);
  assert.equal(JSON.parse(text.split("data: ").at(-1)!).endpoints.length, 2);
  drain.abort();
});
