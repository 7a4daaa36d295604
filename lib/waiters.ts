/**
 * Waiting blocking queries, kept small: one cache subscription, one shutdown listener and one
 * deadline sweep for all of them, so a waiting query is an entry in a set (its Service key,
 * deadline and resolver) and holds no view, body or copy of anything until it answers: a query
 * with its own timer, cache listener and `AbortSignal.any` took so much heap that a few thousand
 * of them exhausted the image's heap cap. A client that leaves is noticed by the same sweep
 * reading its signal's `aborted`, not by a listener on it: Deno's first `abort` listener on a
 * request's signal costs as much heap as the rest of the waiting query. The measurements are in
 * docs/performance.md.
 *
 * @module
 */
import type { ViewSource } from "./cache.ts";
import type { ServiceView } from "./service_view.ts";

/** How often deadlines are checked: a wait is 1 s to 10 min plus up to 1/16 of jitter, so a
 * quarter second late is within what the client already accepts. */
export const SWEEP_MS = 250;

interface Waiter {
  deadline: number;
  /** The client's: aborted once it left. */
  signal: AbortSignal;
  /** Ends the wait; with the tombstone when the Service went away. */
  resolve: (gone?: ServiceView) => void;
}

/** The blocking queries waiting on a cache. */
export class Waiters {
  #byKey = new Map<string, Set<Waiter>>();
  #size = 0;
  #sweep?: ReturnType<typeof setInterval>;
  #draining?: AbortSignal;

  /** Wakes waiters on their Service's changes, and all of them when `signal` aborts. */
  constructor(cache: Pick<ViewSource, "subscribe">, signal?: AbortSignal) {
    cache.subscribe((changed) => {
      for (const v of changed) this.#wakeKey(`${v.namespace}/${v.name}`, v.removed ? v : undefined);
    });
    this.#draining = signal;
    signal?.addEventListener("abort", () => {
      for (const key of [...this.#byKey.keys()]) this.#wakeKey(key);
    }, { once: true });
  }

  /** Waiting queries now. */
  get size(): number {
    return this.#size;
  }

  /** Resolves on the next change of `key` (`namespace/name`; with its tombstone when the Service
   * went away), after `ms`, or within a sweep of `signal` (the client leaving) aborting,
   * whichever comes first. */
  wait(key: string, ms: number, signal: AbortSignal): Promise<ServiceView | undefined> {
    // A query that arrives while the sidecar drains answers at once, like those it woke.
    if (this.#draining?.aborted || signal.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let set = this.#byKey.get(key);
      if (!set) this.#byKey.set(key, set = new Set());
      const w: Waiter = {
        // Monotonic: a step of the wall clock must not end or prolong a wait.
        deadline: performance.now() + ms,
        signal,
        resolve: (gone?: ServiceView) => {
          if (set!.delete(w)) this.#size--;
          if (set!.size === 0 && this.#byKey.get(key) === set) this.#byKey.delete(key);
          if (this.#size === 0) this.#stopSweep();
          resolve(gone);
        },
      };
      set.add(w);
      this.#size++;
      this.#sweep ??= setInterval(() => this.#expire(), SWEEP_MS);
    });
  }

  #wakeKey(key: string, gone?: ServiceView): void {
    const set = this.#byKey.get(key);
    if (!set) return;
    for (const w of [...set]) w.resolve(gone);
  }

  #expire(): void {
    const now = performance.now();
    const due: Waiter[] = [];
    for (const set of this.#byKey.values()) {
      for (const w of set) if (w.deadline <= now || w.signal.aborted) due.push(w);
    }
    for (const w of due) w.resolve();
  }

  #stopSweep(): void {
    clearInterval(this.#sweep);
    this.#sweep = undefined;
  }
}
