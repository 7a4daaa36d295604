/** The one owner of clients that wait: admission up to the limit, each release counted once,
 * the 429 past the limit, and the drain at shutdown told by a promise that the last stream or
 * blocking query ended, not by polling the counts. */
import assert from "node:assert/strict";
import { createApi } from "../../lib/routes/v1.ts";
import { EndpointCache } from "../../lib/cache.ts";
import { HealthRegistry } from "../../lib/health.ts";
import { OpenWatchers } from "../../lib/open_watchers.ts";
import { sliceFor as slice } from "../support/slices.ts";

/** A /v1 handler over Service ns/web at index 10, admitting through `watchers`. */
function setup(watchers: OpenWatchers) {
  const cache = new EndpointCache(new Map([["ns", { kind: "names", names: ["web"] }]]));
  cache.sliceStore("ns").replace([slice("web", ["10.0.0.1"], "5")], "10");
  const drain = new AbortController();
  const api = createApi(cache, {
    self: {},
    watchers,
    health: new HealthRegistry(),
    signal: drain.signal,
  });
  return { api, drain };
}

Deno.test("admits up to the limit of both kinds together, refuses the next, and admits again once one ends", () => {
  const watchers = new OpenWatchers(2);
  const stream = watchers.admit("sse");
  const query = watchers.admit("blocking");
  assert.ok(stream && query);
  assert.deepEqual(watchers.toJSON(), { sse: 1, blocking: 1, sseSlowClosed: 0 });
  assert.equal(watchers.admit("sse"), undefined, "a third past a limit of 2");
  assert.equal(watchers.admit("blocking"), undefined, "the limit counts both kinds");
  query();
  assert.equal(watchers.blocking, 0);
  const next = watchers.admit("blocking");
  assert.ok(next, "admitted once one ended");
  assert.deepEqual([watchers.sse, watchers.blocking], [1, 1]);
});

Deno.test("a release called twice counts its client out once", () => {
  const watchers = new OpenWatchers(2);
  const a = watchers.admit("sse")!;
  watchers.admit("sse");
  a();
  a();
  assert.equal(watchers.sse, 1, "the other stream is still counted");
});

Deno.test("streams closed for not reading are counted", () => {
  const watchers = new OpenWatchers(1);
  watchers.slowClosed();
  watchers.slowClosed();
  assert.equal(watchers.sseSlowClosed, 2);
});

Deno.test("a client past --max-watchers is answered 429 with Retry-After, naming the setting", async () => {
  const watchers = new OpenWatchers(1);
  const { api, drain } = setup(watchers);
  const stream = await api(new Request("http://x/v1/watch/ns/web"), "/v1/watch/ns/web")!;
  assert.equal(stream.status, 200);
  const refused = await api(
    new Request("http://x/v1/services/ns/web?index=10&wait=60s"),
    "/v1/services/ns/web",
    "index=10&wait=60s",
  )!;
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get("retry-after"), "5");
  assert.match((await refused.json()).error, /too many open watches \(1\).*--max-watchers/);
  assert.equal(watchers.blocking, 0, "the refused query is not counted");
  await stream.body!.cancel();
  assert.equal(watchers.sse, 0);
  drain.abort();
});

Deno.test("idle() resolves as the last stream or blocking query ends, not before", async () => {
  const watchers = new OpenWatchers(10);
  const { api } = setup(watchers);
  await watchers.idle();
  const client = new AbortController();
  const held = api(
    new Request("http://x/v1/services/ns/web?index=10&wait=60s", { signal: client.signal }),
    "/v1/services/ns/web",
    "index=10&wait=60s",
  );
  const stream = await api(new Request("http://x/v1/watch/ns/web"), "/v1/watch/ns/web")!;
  assert.deepEqual([watchers.sse, watchers.blocking], [1, 1]);
  let idle = false;
  const done = watchers.idle().then(() => idle = true);
  client.abort();
  await held;
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(idle, false, "a stream is still open");
  await stream.body!.cancel();
  await done;
  assert.deepEqual([watchers.sse, watchers.blocking], [0, 0]);
});

Deno.test("drained() resolves soon after the drain signal ends the last blocking query", async () => {
  const watchers = new OpenWatchers(10);
  const { api, drain } = setup(watchers);
  const held = api(
    new Request("http://x/v1/services/ns/web?index=10&wait=60s"),
    "/v1/services/ns/web",
    "index=10&wait=60s",
  )!;
  assert.equal(watchers.blocking, 1);
  const started = Date.now();
  drain.abort();
  await watchers.drained();
  assert.equal(watchers.blocking, 0);
  assert.equal((await held).status, 200, "ended with the current state");
  assert.ok(Date.now() - started < 1000, `drained after ${Date.now() - started} ms`);
});
