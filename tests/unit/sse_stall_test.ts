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
