/** Durations are measured on a monotonic clock: a step of the wall clock (NTP, a VM resumed)
 * neither ends a blocking query early nor restarts a healthy watch, nor resets a backoff. */
import assert from "node:assert/strict";
import { EndpointCache } from "../../lib/cache.ts";
import { Waiters } from "../../lib/waiters.ts";
import { Watchdog } from "../../lib/watch_stream.ts";
import { Backoff } from "../../lib/backoff.ts";

/** Runs `f` with the wall clock stepped by `ms`. */
async function withClockStep<T>(ms: number, f: () => Promise<T>): Promise<T> {
  const real = Date.now;
  Date.now = () => real() + ms;
  try {
    return await f();
  } finally {
    Date.now = real;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("a blocking query keeps waiting when the wall clock jumps an hour ahead", async () => {
  const cache = new EndpointCache(new Map([["ns", { kind: "names", names: ["web"] }]]));
  const waiters = new Waiters(cache);
  const client = new AbortController();
  let ended = false;
  const waiting = waiters.wait("ns/web", 60_000, client.signal).then(() => ended = true);
  await withClockStep(3_600_000, () => sleep(600));
  assert.equal(ended, false, "ended by the clock step");
  client.abort();
  await waiting;
});

Deno.test("a watch that just sent bytes is not restarted when the wall clock jumps an hour ahead", async () => {
  const ac = new AbortController();
  let probes = 0;
  const dog = new Watchdog(ac, {
    probeAfterMs: 100,
    probeTimeoutMs: 1_000,
    idleTimeoutMs: 60_000,
    probe: () => {
      probes++;
      return Promise.resolve();
    },
  });
  try {
    dog.touch();
    await withClockStep(3_600_000, () => sleep(250));
    assert.equal(ac.signal.aborted, false, `aborted: ${ac.signal.reason}`);
    assert.ok(probes >= 1, "probed after its quiet spell instead");
  } finally {
    dog.stop();
  }
});

Deno.test("a wall clock jumping ahead does not reset a backoff under way", () => {
  const real = Date.now;
  let step = 0;
  Date.now = () => real() + step;
  try {
    const b = new Backoff({ random: () => 0 });
    const first = [b.delay({ kind: "backoff" }), b.delay({ kind: "backoff" })];
    step = 3_600_000;
    assert.deepEqual([...first, b.delay({ kind: "backoff" })], [800, 1600, 3200]);
  } finally {
    Date.now = real;
  }
});

Deno.test("a dead connection is still noticed when the wall clock jumps an hour back", async () => {
  const ac = new AbortController();
  const dog = new Watchdog(ac, {
    probeAfterMs: 100,
    probeTimeoutMs: 100,
    idleTimeoutMs: 60_000,
    probe: () => Promise.reject(new Error("no answer")),
  });
  try {
    dog.touch();
    await withClockStep(-3_600_000, () => sleep(400));
    assert.equal(ac.signal.aborted, true, "the failed probe was never sent");
    assert.equal((ac.signal.reason as Error).name, "DeadConnection");
  } finally {
    dog.stop();
  }
});
