/**
 * What the reflectors hold of the API server: a `fetch` with TLS and credentials applied, and the
 * calls that renew them. Its own file so that the two makers of one (lib/kube_client.ts in a
 * pod, lib/kubeconfig_connection.ts from a kubeconfig) and its users import it without a cycle.
 *
 * @module
 */

/** A connection to the API server. */
export interface KubeConnection {
  /** Base URL, e.g. https://10.96.0.1:443. */
  server: string;
  /** How the connection was configured: "in-cluster" or "kubeconfig". */
  mode: "in-cluster" | "kubeconfig";
  /** Default namespace: the pod's own, or the kubeconfig context's. */
  namespace?: string;
  /** `fetch` with the connection's TLS and credentials applied. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Tells the connection the server answered 401, so credentials are re-read before reuse. */
  unauthorized(): void;
  /**
   * Drops pooled connections. After a silent or broken stream the HTTP/2 connection it ran on
   * may be dead without an error (a black hole sends no RST), and the pool would reuse it for
   * every retry; a fresh client dials anew.
   */
  reset(): void;
  /**
   * Whether every request rides one HTTP/2 connection, so that bytes of any response prove the
   * one connection under every watch alive (lib/connection_liveness.ts); undefined when it cannot
   * be told now (the server unreachable). Absent or false: each watch probes its own connection.
   */
  multiplexed?(): Promise<boolean | undefined>;
  /** Releases the HTTP client. */
  close(): void;
}
