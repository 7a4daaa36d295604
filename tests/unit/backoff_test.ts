/** The reflector's waits: quick retries only while a fault is young, then client-go's backoff;
 * `Retry-After` read in both of its forms and never as "no wait" when empty. */
import assert from "node:assert/strict";
import { parseRetryAfter, RETRY_AFTER_MAX_MS, statusError } from "../../lib/api_error.ts";
import {
  Backoff,
  BACKOFF_INITIAL_MS,
  BACKOFF_MAX_MS,
  QUICK_RETRY_WINDOW_MS,
} from "../../lib/backoff.ts";

/** Tries made while a fault of `kind` lasts `ms`, each after the delay the backoff gives; a
 * fixed seed for the jitter. */
function outage(ms: number, kind: "quick" | "backoff", seed = 1): number[] {
  let t = 0;
  let x = seed;
  const random = () => (x = (x * 48271) % 2147483647) / 2147483647;
  const b = new Backoff({ random, now: () => t });
  const delays: number[] = [];
  while (t < ms) {
    const d = b.delay({ kind });
    delays.push(d);
    t += d;
  }
  return delays;
}

Deno.test("a fault that nobody answers is retried about every second only while young, then backs off to the cap", () => {
  const delays = outage(10 * 60_000, "quick");
  let t = 0;
  const early: number[] = [];
  for (const d of delays) {
    if (t + d > QUICK_RETRY_WINDOW_MS) break;
    early.push(d);
    t += d;
  }
  assert.ok(early.every((d) => d >= 500 && d <= 1_500), `quick at first: ${early}`);
  const late = delays.slice(-5);
  assert.ok(
    late.every((d) => d >= BACKOFF_MAX_MS / 2 && d <= BACKOFF_MAX_MS),
    `at the cap after a lasting fault: ${late.map(Math.round)}`,
  );
  // Ten minutes of it: about one try a second for the first minute, then at most one per 15 s.
  assert.ok(delays.length < 60 + 6 + 9 * 4 + 2, `${delays.length} tries in 10 minutes`);
});

Deno.test("after a healthy watch the next fault is retried quickly again", () => {
  let t = 0;
  const b = new Backoff({ random: () => 0, now: () => t });
  while (t < 5 * 60_000) t += b.delay({ kind: "quick" });
  assert.ok(b.delay({ kind: "quick" }) >= BACKOFF_MAX_MS / 2);
  b.reset();
  assert.equal(b.delay({ kind: "quick" }), 500);
  assert.equal(b.delay({ kind: "backoff" }), BACKOFF_INITIAL_MS);
});

Deno.test("Retry-After is read as seconds or an HTTP date; empty, zero or garbage is no instruction", () => {
  const now = Date.parse("2026-12-05T08:00:00Z");
  assert.equal(parseRetryAfter("7", now), 7_000);
  assert.equal(parseRetryAfter(" 2 ", now), 2_000);
  assert.equal(parseRetryAfter("Sat, 05 Dec 2026 08:00:12 GMT", now), 12_000);
  assert.equal(parseRetryAfter("3600", now), RETRY_AFTER_MAX_MS);
  for (const h of ["", "0", "-1", "soon", "Sat, 05 Dec 2026 07:59:00 GMT", null]) {
    assert.equal(parseRetryAfter(h, now), undefined, JSON.stringify(h));
  }
  // An empty header leaves the Status's own retryAfterSeconds, or no told wait at all.
  const s = { code: 429, reason: "TooManyRequests", message: "slow down" };
  assert.equal(statusError(s, 429, "").retryAfterMs, undefined);
  assert.equal(
    statusError({ ...s, details: { retryAfterSeconds: 3 } }, 429, "").retryAfterMs,
    3_000,
  );
});
