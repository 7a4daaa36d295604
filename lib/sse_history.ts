/**
 * What an SSE stream can replay after `Last-Event-ID`: this process's history starts at its
 * horizon (the index of its first complete list); from there, current views carry every change
 * and the tombstones kept here carry every removal. An id before the horizon (a client of an
 * earlier process), or after the newest index (a restored etcd), cannot be replayed: such a
 * stream starts with `event: reset` and a snapshot.
 *
 * @module
 */
import type { EndpointCache } from "./cache.ts";
import type { ServiceView } from "./service_view.ts";

/**
 * Tombstones kept for replay. A removal is a few hundred bytes; past this many the oldest are
 * dropped and the horizon moves past them (a client that old gets a reset, never a wrong state).
 */
export const MAX_TOMBSTONES = 10_000;

/** Replay horizon, tombstones and readiness of one cache. */
export class SseHistory {
  #cache: EndpointCache;
  #horizon: number | undefined;
  #tombstones = new Map<string, ServiceView>();

  /** Follows `cache` for the life of the process. */
  constructor(cache: EndpointCache) {
    this.#cache = cache;
    this.#observeSynced();
    cache.onSynced(() => this.#observeSynced());
    cache.subscribe((changed) => {
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

  /** Index from which this process can replay; undefined before the first complete list of
   * any namespace. Views of a namespace that syncs later get indexes past it (the cache's index
   * only grows), so one horizon serves every stream. */
  get horizon(): number | undefined {
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

  #observeSynced(): void {
    if (this.#horizon !== undefined) return;
    const namespaces = [...this.#cache.selection.plan.keys()];
    if (namespaces.some((ns) => this.#cache.synced(ns))) this.#horizon = this.#cache.index;
  }
}
