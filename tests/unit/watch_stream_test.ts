/**
 * lib/watch_stream.ts: a watch body read as events however its bytes are cut, ended at once by
 * an abort, let go when left early; and the watchdog that tells a quiet watch from a dead
 * connection.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DeadConnection, QuietWatch, Watchdog, watchEvents } from "../../lib/watch_stream.ts";

/** A body that sends `chunks` and then stays open until cancelled; notes the cancel. */
function scriptedBody(chunks: Uint8Array[], options: { close?: boolean } = {}) {
  const state = { cancelled: false };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(c);
      if (options.close) controller.close();
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { body, state };
}

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("events cut anywhere, even inside a multi-byte character, read whole", async () => {
  const all = bytes(
    '{"type":"ADDED","object":{"metadata":{"name":"ü-1"}}}\n\n' +
      '{"type":"DELETED","object":{"metadata":{"name":"b"}}}',
  );
  const cut = all.indexOf(0xbc); // the second byte of "ü"
  const { body } = scriptedBody([all.slice(0, 5), all.slice(5, cut), all.slice(cut)], {
    close: true,
  });
  let chunks = 0;
  const events = [];
  for await (const e of watchEvents(body, { onBytes: () => chunks++ })) events.push(e);
  assert.deepEqual(
    events.map((e) => [e.type, (e.object as { metadata: { name: string } }).metadata.name]),
    [
      ["ADDED", "ü-1"],
      ["DELETED", "b"],
    ],
  );
  assert.equal(chunks, 3, "every chunk of bytes is reported to the watchdog");
});

Deno.test("an abort while a read is pending ends the events with its reason and cancels the body", async () => {
  const { body, state } = scriptedBody([bytes('{"type":"ADDED","object":{}}\n')]);
  const ac = new AbortController();
  const seen: string[] = [];
  const reading = (async () => {
    for await (const e of watchEvents(body, { signal: ac.signal })) {
      seen.push(e.type);
      ac.abort(new Error("stopped"));
    }
  })();
  await assert.rejects(reading, /stopped/);
  assert.deepEqual(seen, ["ADDED"]);
  assert.ok(state.cancelled);
});

Deno.test("a consumer that stops early lets the connection go", async () => {
  const { body, state } = scriptedBody([
    bytes('{"type":"ADDED","object":{}}\n{"type":"ADDED","object":{}}\n'),
  ]);
  for await (const _ of watchEvents(body)) break;
  assert.ok(state.cancelled);
});

Deno.test("a line that is not JSON fails the watch and lets the connection go", async () => {
  const { body, state } = scriptedBody([bytes("not json\n")]);
  await assert.rejects(async () => {
    for await (const _ of watchEvents(body)) { /* none */ }
  }, SyntaxError);
  assert.ok(state.cancelled);
});

Deno.test("a silent watch whose probe gets no answer is aborted as a dead connection", async () => {
  const ac = new AbortController();
  const dog = new Watchdog(ac, {
    probeAfterMs: 10,
    probeTimeoutMs: 20,
    idleTimeoutMs: 60_000,
    probe: (signal) =>
      new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
  });
  try {
    await new Promise((resolve) => ac.signal.addEventListener("abort", resolve));
    assert.ok(ac.signal.reason instanceof DeadConnection, String(ac.signal.reason));
  } finally {
    dog.stop();
  }
});

Deno.test("a silent watch whose connection answers probes is restarted as quiet after the idle timeout", async () => {
  const ac = new AbortController();
  let alive = 0;
  const dog = new Watchdog(ac, {
    probeAfterMs: 10,
    idleTimeoutMs: 50,
    probe: () => Promise.resolve(),
    onAlive: () => alive++,
  });
  try {
    await new Promise((resolve) => ac.signal.addEventListener("abort", resolve));
    assert.ok(ac.signal.reason instanceof QuietWatch, String(ac.signal.reason));
    assert.ok(alive >= 1, "the connection was probed and answered first");
  } finally {
    dog.stop();
  }
});
