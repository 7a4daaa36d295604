/**
 * The store contract of the list/watch loop, after client-go's `tools/cache/store.go` beside its
 * `reflector.go`: what a reflector lists and watches ({@linkcode KubeItem}), the events a watch
 * stream carries ({@linkcode WatchEvent}), and where the reflector puts them
 * ({@linkcode ReflectorStore}, implemented by the cache and the Service selection). Its own file,
 * so that the loop, the pager, the stream reader and the stores all import it from here and none
 * imports another back.
 *
 * @module
 */
import type { V1ObjectMeta, V1Status } from "@kubernetes/client-node";

/** An object the reflector lists and watches: all it reads is the metadata. */
export interface KubeItem {
  metadata?: V1ObjectMeta;
}

/** Where a reflector puts what it lists and watches. */
export interface ReflectorStore {
  /** Whether a complete list has been stored. */
  readonly synced: boolean;
  /** Replaces everything with a complete list taken at `resourceVersion`. */
  replace(items: KubeItem[], resourceVersion: string): void;
  /** Applies an ADDED, MODIFIED or DELETED event. */
  apply(type: string, item: KubeItem): void;
  /** A bookmark: the server was heard from, nothing changed. */
  touch(): void;
}

/** One event of a watch stream. */
export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: KubeItem & V1Status;
}
