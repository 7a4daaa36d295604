/**
 * What an SSE stream can replay after `Last-Event-ID`: this process's history starts at its
 * horizon (the index of its first complete list); from there, current views carry every change
 * and the tombstones kept here carry every removal. An id before the horizon (a client of an
 * earlier process), or after the newest index (a restored etcd), cannot be replayed: such a
 * stream starts with `event: reset` and a snapshot. It also tells streams opened before the first
 * complete list when the cache becomes ready, with one timer for all of them.
 *
 * @module
 */
import type { EndpointCache, ServiceView } from "./cache.ts";

/**
 * Tombstones kept for replay. A removal is a few hundred bytes; past this many the oldest are
 * dropped and the horizon moves past them (a client that old gets a reset, never a wrong state).
 */
export const MAX_TOMBSTONES = 10_000;

/** How often readiness is checked while some stream waits for the first list: the cache has no
 * "ready" notification, and a quarter second is well inside a client's retry delay. */
export const READY_POLL_MS = 250;

/** Replay horizon, tombstones and readiness of one cache. */
export class SseHistory {
  #cache: EndpointCache;
  #horizon: number | undefined;
  #tombstones = new Map<string, ServiceView>();
  #ready: Promise<void> | undefined;

  /** Follows `cache` for the life of the process. */
  constructor(cache: EndpointCache) {
    this.#cache = cache;
    cache.subscribe((changed) => {
      this.#observeReady();
      for (const v of changed) {
        const key = `${v.namespace}/${v.name}`;
        this.#tombstones.delete(key);
        if (!v.removed) continue;
        this.#tombstones.set(key, v);
        if (this.#tombstones.size > MAX_TOMBSTONES) {
          const [oldestKey, oldest] = this.#tombstones.entries().next().value!;
          this.#tombstones.delete(oldestKey);
          this.#horizon = Math.max(this.#horizon ?? 0, oldest.index + 1);
        }
      }
    });
  }

  /** Index from which this process can replay; undefined before the first complete list. */
  get horizon(): number | undefined {
    this.#observeReady();
    return this.#horizon;
  }

  /** Whether a stream resuming after `lastEventId` can be given exactly what it missed. */
  canReplay(lastEventId: number): boolean {
    const h = this.horizon;
    return h !== undefined && lastEventId >= h && lastEventId <= this.#cache.index;
  }

  /** Removals at or after `index`, oldest first. */
  removedSince(index: number): ServiceView[] {
    return [...this.#tombstones.values()].filter((v) => v.index >= index);
  }

  /** Resolves once the cache has had its first complete list (at once if it has). */
  ready(): Promise<void> {
    if (this.#cache.ready) {
      this.#observeReady();
      return Promise.resolve();
    }
    return this.#ready ??= new Promise((resolve) => {
      const timer = setInterval(() => {
        if (!this.#cache.ready) return;
        clearInterval(timer);
        this.#observeReady();
        resolve();
      }, READY_POLL_MS);
      // Waiting streams must not keep a stopping process alive.
      Deno.unrefTimer(timer);
    });
  }

  #observeReady(): void {
    if (this.#horizon === undefined && this.#cache.ready) this.#horizon = this.#cache.index;
  }
}
