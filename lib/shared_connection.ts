/**
 * One API-server connection shared by every reflector, telling each of its resets. A reset (one
 * watch found its connection dead) replaces the HTTP client for all of them, while the other
 * watches would keep running on the old one (over HTTP/2, the very connection found dead), and
 * their probes, sent over the new client, would vouch for it. Told of the reset, each watch
 * moves to the new client at once (lib/reflector.ts), without a reset of its own. Each client
 * also has one {@linkcode ConnectionLiveness}: where its requests ride one HTTP/2 connection,
 * the watches on it share one idle probe instead of sending one each.
 *
 * @module
 */
import { ConnectionLiveness } from "./connection_liveness.ts";
import type { KubeConnection } from "./kube_connection.ts";
import { PROBE_AFTER_MS, PROBE_TIMEOUT_MS } from "./watch_stream.ts";

/** A {@linkcode KubeConnection} that tells listeners of each reset. */
export interface SharedConnection extends KubeConnection {
  /** Calls `listener` after each reset, with the reason when the connection was found dead;
   * returns the function that unsubscribes. */
  onReset(listener: (reason?: string) => void): () => void;
  /** The liveness of the current HTTP client's connection. */
  liveness(): ConnectionLiveness;
}

/** Options for {@linkcode shareConnection}. */
export interface ShareOptions {
  /** Silence of the whole connection before a probe (ms). Default {@linkcode PROBE_AFTER_MS}. */
  probeAfterMs?: number;
  /** How long a probe may take (ms). Default {@linkcode PROBE_TIMEOUT_MS}. */
  probeTimeoutMs?: number;
}

/** Wraps `connection`, telling its resets and keeping the liveness of its current client. */
export function shareConnection(
  connection: KubeConnection,
  options: ShareOptions = {},
): SharedConnection {
  const listeners = new Set<(reason?: string) => void>();
  // Whether requests ride one HTTP/2 connection; until known, every watch probes on its own, as
  // over HTTP/1.1. Asked again at each reset (the server's address may now reach another
  // server); a "cannot tell" then (a reset in a black hole) keeps what was known.
  let multiplexed = false;
  const learn = () => {
    connection.multiplexed?.().then((m) => {
      if (m !== undefined) multiplexed = m;
    }, () => {});
  };
  const reset = (reason?: string) => {
    live.close();
    connection.reset();
    live = fresh();
    learn();
    for (const l of [...listeners]) l(reason);
  };
  const fresh = (): ConnectionLiveness => {
    const l: ConnectionLiveness = new ConnectionLiveness({
      probeAfterMs: options.probeAfterMs ?? PROBE_AFTER_MS,
      probeTimeoutMs: options.probeTimeoutMs ?? PROBE_TIMEOUT_MS,
      multiplexed: () => multiplexed,
      probe: async (signal) => {
        const resp = await connection.fetch("/version", { signal });
        await resp.body?.cancel();
      },
      // Once for every watch on it: the first to learn of it resets; a later report is stale.
      onDead: (reason) => {
        if (live === l) reset(reason);
      },
    });
    return l;
  };
  let live = fresh();
  learn();
  return {
    server: connection.server,
    mode: connection.mode,
    namespace: connection.namespace,
    fetch: async (path, init) => {
      const l = live;
      const resp = await connection.fetch(path, init);
      l.heard();
      return resp;
    },
    unauthorized: () => connection.unauthorized(),
    reset: () => reset(),
    onReset: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    liveness: () => live,
    close: () => {
      live.close();
      connection.close();
    },
  };
}
