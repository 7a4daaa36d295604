/**
 * lib/sse_history.ts: from which index a resuming SSE stream can be given exactly what it
 * missed, and the removals it is told about.
 *
 * @module
 */
import assert from "node:assert/strict";
import { EndpointCache } from "../../lib/cache.ts";
import { SseHistory } from "../../lib/sse_history.ts";
import { sliceFor } from "../support/slices.ts";

function setup() {
  const cache = new EndpointCache(
    new Map([["ns", { kind: "all" } as const]]),
  );
  return { cache, store: cache.sliceStore("ns"), history: new SseHistory(cache) };
}

Deno.test("nothing can be replayed before the first complete list", () => {
  const { history } = setup();
  assert.equal(history.horizon, undefined);
  assert.ok(!history.canReplay(0));
});

Deno.test("after the first list, a stream resuming from any index since then is replayable", () => {
  const { cache, store, history } = setup();
  store.replace([sliceFor("web", ["10.0.0.1"], "5")], "5");
  const horizon = history.horizon!;
  assert.equal(horizon, cache.index);
  store.apply("MODIFIED", sliceFor("web", ["10.0.0.1", "10.0.0.2"], "6"));
  assert.ok(history.canReplay(horizon));
  assert.ok(history.canReplay(cache.index));
  assert.ok(!history.canReplay(horizon - 1), "older than the horizon");
  assert.ok(!history.canReplay(cache.index + 1), "newer than this process has seen");
});

Deno.test("a removed Service is reported to streams resuming before its removal, not after", () => {
  const { cache, store, history } = setup();
  store.replace([sliceFor("web", ["10.0.0.1"], "5"), sliceFor("api", ["10.0.1.1"], "5")], "5");
  const before = cache.index;
  store.apply("DELETED", sliceFor("web", ["10.0.0.1"], "6"));
  const removed = history.removedSince(before);
  assert.deepEqual(removed.map((v) => v.name), ["web"]);
  assert.ok(removed[0]!.removed);
  assert.deepEqual(history.removedSince(cache.index + 1), []);
});

Deno.test("a Service that comes back is no longer reported as removed", () => {
  const { cache, store, history } = setup();
  store.replace([sliceFor("web", ["10.0.0.1"], "5")], "5");
  const before = cache.index;
  store.apply("DELETED", sliceFor("web", ["10.0.0.1"], "6"));
  assert.deepEqual(history.removedSince(before).map((v) => v.name), ["web"]);
  store.apply("ADDED", sliceFor("web", ["10.0.0.2"], "7"));
  assert.deepEqual(history.removedSince(before), []);
});
