/**
 * One API-server connection shared by every reflector, telling each of its resets. A reset (one
 * watch found its connection dead) replaces the HTTP client for all of them, while the other
 * watches would keep running on the old one (over HTTP/2, the very connection found dead), and
 * their probes, sent over the new client, would vouch for it. Told of the reset, each watch
 * moves to the new client at once (lib/reflector.ts), without a reset of its own.
 *
 * @module
 */
import type { KubeConnection } from "./kube_connection.ts";

/** A {@linkcode KubeConnection} that tells listeners of each reset. */
export interface SharedConnection extends KubeConnection {
  /** Calls `listener` after each reset; returns the function that unsubscribes. */
  onReset(listener: () => void): () => void;
}

/** Wraps `connection`, telling its resets. */
export function shareConnection(connection: KubeConnection): SharedConnection {
  const listeners = new Set<() => void>();
  return {
    server: connection.server,
    mode: connection.mode,
    namespace: connection.namespace,
    fetch: (path, init) => connection.fetch(path, init),
    unauthorized: () => connection.unauthorized(),
    reset: () => {
      connection.reset();
      for (const l of [...listeners]) l();
    },
    onReset: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: () => connection.close(),
  };
}
