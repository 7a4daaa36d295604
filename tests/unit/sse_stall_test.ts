/** The stall rule of an SSE stream: only a consumer that stops reading is closed as slow. */
import assert from "node:assert/strict";
import { EndpointCache } from "../../lib/cache.ts";
import { type CloseReason, sseResponse } from "../../lib/sse.ts";
import { SseHistory } from "../../lib/sse_history.ts";
import { slice } from "../support/slices.ts";

Deno.test("an all-Services stream whose first hand-over is over the unsent bound is not closed as slow once its reader took it", async () => {
  const names = Array.from({ length: 20 }, (_, i) => `svc${i}`);
  const cache = new EndpointCache(new Map([["ns", { kind: "names", names }]]));
  const ips = Array.from({ length: 50 }, (_, k) => `10.0.${Math.floor(k / 250)}.${k % 250}`);
  cache.sliceStore("ns").replace(
    names.map((s, i) => slice(ips, { name: `${s}-abc`, rv: String(10 + i), service: s })),
    "30",
  );
  const closed: CloseReason[] = [];
  const encoder = new TextEncoder();
  const resp = sseResponse(cache, {
    history: new SseHistory(cache),
    frame: (v) => encoder.encode(`data: ${JSON.stringify(v.endpoints)}\n\n`),
    // The snapshot (20 Services of 50 endpoints) is well over 4 KiB: over the bound at once.
    maxUnsentBytes: 4096,
    stallMs: 200,
    heartbeatMs: 600,
    onClose: (reason) => closed.push(reason),
  });
  const reader = resp.body!.getReader();
  let text = "";
  const decoder = new TextDecoder();
  // The reader keeps reading: the snapshot, then a heartbeat well after the stall time.
  while (!text.includes(": heartbeat")) {
    const { value, done } = await reader.read();
    assert.equal(done, false, `the stream ended (${closed.join()}) with ${text.length} bytes read`);
    text += decoder.decode(value, { stream: true });
  }
  assert.equal(text.match(/^data: /gm)?.length, 20, "every Service's snapshot");
  assert.deepEqual(closed, [], "a stream whose reader took everything is not slow");
  await reader.cancel();
  assert.deepEqual(closed, ["client"]);
});

/** 20 Services of about 25 KB each as frames, and an all-Services stream over them. */
function bigStream(options: { paceMs?: number; drain?: AbortSignal } = {}) {
  const names = Array.from({ length: 20 }, (_, i) => `svc${i}`);
  const cache = new EndpointCache(new Map([["ns", { kind: "names", names }]]));
  const store = cache.sliceStore("ns");
  const state = (rv: number) =>
    names.map((s, i) =>
      slice([`10.1.${i}.${rv % 250}`], { name: `${s}-abc`, rv: String(rv + i), service: s })
    );
  store.replace(state(100), "200");
  const closed: CloseReason[] = [];
  const encoder = new TextEncoder();
  const resp = sseResponse(cache, {
    history: new SseHistory(cache),
    frame: (v) =>
      encoder.encode(
        `id: ${v.index}\ndata: ${JSON.stringify(v.endpoints)}${" ".repeat(25_000)}\n\n`,
      ),
    stallMs: 200,
    paceMs: options.paceMs,
    signal: options.drain,
    onClose: (reason) => closed.push(reason),
  });
  return { store, state, closed, reader: resp.body!.getReader() };
}

/** Bytes queued in the body before the first frame of a state at or after `fromId`. */
async function queuedBefore(reader: ReadableStreamDefaultReader<Uint8Array>, fromId: number) {
  let bytes = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return bytes;
    const id = Number(new TextDecoder().decode(value).match(/^id: (\d+)/)?.[1]);
    if (id >= fromId) return bytes;
    bytes += value.byteLength;
  }
}

Deno.test("a stream whose reader stops keeps at most one hand-over's worth of frames the cache has moved past", async () => {
  const { store, state, closed, reader } = bigStream({ paceMs: 10 });
  for (let i = 0; i < 21; i++) await reader.read(); // retry line and the 20 snapshots
  store.replace(state(300), "400"); // every Service changes: 20 new frames of 25 KB
  await reader.read(); // the reader takes one of the next hand-over, then stops
  store.replace(state(500), "600"); // and every Service changes again
  await new Promise((r) => setTimeout(r, 600));
  const stale = await queuedBefore(reader, 500);
  assert.ok(stale <= 64 * 1024 + 26_000, `${stale} bytes of superseded frames still queued`);
  await reader.cancel();
  assert.ok(closed.length === 1);
});

Deno.test("a draining stream says it ended only once its reader took the last hand-over, so the drain cut still covers it", async () => {
  const drain = new AbortController();
  const { store, state, closed, reader } = bigStream({ drain: drain.signal });
  for (let i = 0; i < 21; i++) await reader.read();
  store.replace(state(300), "400");
  drain.abort();
  await reader.read();
  await new Promise((r) => setTimeout(r, 50));
  if (closed.length) {
    const queued = await queuedBefore(reader, Infinity);
    assert.ok(queued <= 64 * 1024 + 26_000, `closed as ${closed} with ${queued} bytes queued`);
  }
  await reader.cancel();
});
