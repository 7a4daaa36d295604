/**
 * How long the reflector waits before its next list-and-watch round after a failure: quickly
 * (about a second, jittered) while nobody answers at the server's address, since a refused
 * connection costs the server nothing and the view must come back within seconds of its return,
 * but only for {@linkcode QUICK_RETRY_WINDOW_MS}: a fault that lasts (a balancer with no healthy
 * backend, an overloaded server, a `/readyz` ServiceAccounts may not read) backs off like any
 * other, so a fleet does not knock once a second for good (client-go backs off every failure,
 * refused connections included: `isWatchErrorRetriable` and `delayHandler` in
 * `tools/cache/reflector.go`);
 * as told by `Retry-After` on 429; otherwise client-go's exponential backoff (800 ms doubling to
 * 30 s, full jitter, reset after 2 minutes without a failure: `NewExponentialBackoffManager`
 * with the `defaultBackoff*` values of `tools/cache/reflector.go`). Unlike client-go, a watch
 * that delivers an event or bookmark also resets it: one fault's backoff must not spill into the
 * next (an API server restarted twice within 2 minutes answers each return with a 410, and the
 * view must be back within 10 s of each), while a server that lists but fails every watch
 * before its first event still backs off to the cap.
 *
 * @module
 */

/** First backoff after an error; client-go's `defaultBackoffInit`. */
export const BACKOFF_INITIAL_MS = 800;
/** Backoff cap (`defaultBackoffMax`). Unlike client-go ([30, 60) s with jitter) the jittered
 * delay stays in [15, 30] s, so a recovered API server waits at most 30 s for us. */
export const BACKOFF_MAX_MS = 30_000;
/** Two minutes without a failure resets the backoff (`defaultBackoffReset`). */
export const BACKOFF_RESET_MS = 120_000;
/** Retry period while the server's address refuses connections: nothing to spare the server
 * from, and a short period brings the view back within seconds of its return. */
export const UNREACHABLE_RETRY_MS = 1_000;
/** How long quick retries go on before the backoff takes over: an API server restart (a
 * minute at most: the faults test's 35 s outage among them) comes back within a second; past
 * that the fault is not a restart, and 10,000 Pods knocking every second would be a load. */
export const QUICK_RETRY_WINDOW_MS = 60_000;

/** What kind of wait a failure calls for. */
export type Wait =
  /** Nobody answers (connection refused, or the server is starting): retry quickly, for
   * {@linkcode QUICK_RETRY_WINDOW_MS}; then back off. */
  | { kind: "quick" }
  /** The server asked for this wait (429 Retry-After). */
  | { kind: "told"; ms: number }
  /** Anything else: exponential backoff. */
  | { kind: "backoff" };

/** Options for {@linkcode Backoff}. */
export interface BackoffOptions {
  /** Random in [0, 1). Default `Math.random`. */
  random?: () => number;
  /** Monotonic clock (ms). Default `performance.now`. */
  now?: () => number;
}

/** The exponential backoff of one reflector, with the quick and told waits beside it. */
export class Backoff {
  #random: () => number;
  #now: () => number;
  #next = BACKOFF_INITIAL_MS;
  #lastBackoffAt = -Infinity;
  /** When the current run of quick retries began; undefined when none runs. */
  #quickSince?: number;
  #lastFailureAt = -Infinity;

  /** A backoff at its initial value. */
  constructor(options: BackoffOptions = {}) {
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? (() => performance.now());
  }

  /** The server proved healthy (a watch delivered an event or bookmark): the next failure
   * starts again from {@linkcode BACKOFF_INITIAL_MS}, and quick retries are allowed again. */
  reset(): void {
    this.#next = BACKOFF_INITIAL_MS;
    this.#quickSince = undefined;
  }

  /** The delay (ms) before the next round after a failure that calls for `wait`. */
  delay(wait: Wait): number {
    const now = this.#now();
    // Two minutes without a failure: whatever came before is over.
    if (now - this.#lastFailureAt > BACKOFF_RESET_MS) this.#quickSince = undefined;
    this.#lastFailureAt = now;
    if (wait.kind === "quick") {
      this.#quickSince ??= now;
      if (now - this.#quickSince < QUICK_RETRY_WINDOW_MS) {
        return UNREACHABLE_RETRY_MS * (0.5 + this.#random());
      }
    }
    if (wait.kind === "told") return wait.ms * (1 + 0.2 * this.#random());
    if (now - this.#lastBackoffAt > BACKOFF_RESET_MS) this.#next = BACKOFF_INITIAL_MS;
    this.#lastBackoffAt = now;
    // Jitter up to the full delay again, as client-go's wait.Jitter(d, 1.0); at the cap, spread
    // over [15, 30] s so that a fleet failing together does not retry together.
    const r = this.#random();
    let d = this.#next * (1 + r);
    if (d > BACKOFF_MAX_MS) d = BACKOFF_MAX_MS * (0.5 + r / 2);
    this.#next = Math.min(this.#next * 2, BACKOFF_MAX_MS);
    return d;
  }
}
