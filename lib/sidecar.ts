/**
 * Wires the parts together: a connection to the API server, one cache, one reflector per
 * namespace (one watch connection per namespace, not per Service) and the HTTP server, all
 * stopped by one AbortSignal.
 *
 * @module
 */
import { EndpointCache, SERVICE_NAME_LABEL } from "./cache.ts";
import type { Config } from "./config.ts";
import { connect, type KubeConnection } from "./kube_client.ts";
import type { Logger } from "./log.ts";
import { Reflector } from "./reflector.ts";
import { createHandler } from "./routes.ts";

/** A running sidecar. */
export interface Sidecar {
  /** The address the HTTP server listens on. */
  addr: Deno.NetAddr;
  /** Resolves when the server has finished its in-flight requests and the watches closed. */
  finished: Promise<void>;
}

/** Options for {@linkcode startSidecar}. */
export interface SidecarOptions {
  log: Logger;
  /** Stops everything when aborted. */
  signal: AbortSignal;
}

/** Connects, starts the watches and the HTTP server. Throws ConfigError for bad settings. */
export async function startSidecar(config: Config, options: SidecarOptions): Promise<Sidecar> {
  const { log, signal } = options;
  const conn: KubeConnection = await connect({
    kubeconfig: config.kubeconfig,
    context: config.context,
    serviceAccountDir: config.serviceAccountDir,
    onTokenReload: () => log.log("info", "token reloaded", { dir: config.serviceAccountDir }),
  });
  const defaultNs = config.namespace ?? conn.namespace ?? "default";
  const services = config.services.map((s) => ({ ...s, namespace: s.namespace || defaultNs }));
  const cache = new EndpointCache(services);
  const reflectors = cache.namespaces.map((namespace) => {
    const names = services.filter((s) => s.namespace === namespace).map((s) => s.name);
    const labelSelector = names.length === 1
      ? `${SERVICE_NAME_LABEL}=${names[0]}`
      : `${SERVICE_NAME_LABEL} in (${names.join(",")})`;
    return new Reflector(cache, {
      namespace,
      labelSelector,
      connection: conn,
      log,
      idleTimeoutMs: config.watchIdleTimeoutMs,
    });
  });
  const handler = createHandler(cache, { primary: services[0]! });
  const server = Deno.serve({
    hostname: config.listenAddress,
    port: config.listenPort,
    signal,
    onListen: () => {},
    onError: (e) => {
      log.log("error", "request failed", { error: e });
      return new Response("internal error", { status: 500 });
    },
  }, handler);
  const addr = server.addr as Deno.NetAddr;
  log.log("info", "started", {
    listen: `${addr.hostname}:${addr.port}`,
    server: conn.server,
    mode: conn.mode,
    services: services.map((s) => `${s.namespace}/${s.name}`),
  });
  const watches = Promise.all(reflectors.map((r) => r.run(signal)));
  const finished = Promise.all([server.finished, watches]).then(() => conn.close());
  return { addr, finished };
}
