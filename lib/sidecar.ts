/**
 * Wires the parts together: a connection to the API server, one cache, one EndpointSlice
 * reflector per namespace (one watch connection per namespace, not per Service; plus a Service
 * watch in selector mode), the metrics and the HTTP server, all stopped by one AbortSignal, in
 * order: blocking queries and SSE streams end first with complete answers (the drain signal),
 * then the HTTP server drains, then the watches stop.
 *
 * @module
 */
import { EndpointCache } from "./cache.ts";
import { localClients } from "./access.ts";
import type { Config } from "./config.ts";
import { HealthRegistry } from "./health.ts";
import { connect } from "./kube_client.ts";
import type { KubeConnection } from "./kube_connection.ts";
import type { Logger } from "./log.ts";
import { OpenWatchers } from "./open_watchers.ts";
import { shareConnection } from "./shared_connection.ts";
import { sidecarMetrics } from "./sidecar_metrics.ts";
import { planReflectors, watchPlan } from "./watch_plan.ts";
import { createHandler, type Handler, type HandlerOptions } from "./routes/table.ts";
import { servePort } from "./listeners.ts";
import { listenOn } from "./listen_setting.ts";
import { logIdentity, resolveIdentity } from "./self_identity.ts";

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
  /** Stops everything when aborted (long-polls first, then the server, then the watches). */
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
  // Shared by every reflector: a watch moves to the new client when another one resets it.
  const shared = shareConnection(conn);
  const defaultNs = config.namespace ?? conn.namespace ?? "default";
  const plan = watchPlan(config, defaultNs);
  const cache = new EndpointCache(plan, { log });
  const reflectors = planReflectors(plan, cache, {
    connection: shared,
    log,
    idleTimeoutMs: config.watchIdleTimeoutMs,
  });
  const health = new HealthRegistry();
  for (const r of reflectors) health.add(r.health);
  const watchers = new OpenWatchers(config.maxWatchers);
  const drain = new AbortController();
  const metrics = sidecarMetrics(cache, reflectors, watchers);
  const pod = resolveIdentity(config);
  const first = config.services[0];
  const isLocal = localClients(config.localClients);
  const handlerOptions: HandlerOptions = {
    primary: first ? { namespace: first.namespace || defaultNs, name: first.name } : undefined,
    self: { nodeName: config.nodeName, zone: config.zone },
    pod: pod.identity,
    watchers,
    signal: drain.signal,
    log,
    readyMaxStalenessMs: config.readyMaxStalenessMs,
    metrics,
    health,
    allowRemoteData: config.allowRemoteData,
    isLocalClient: isLocal,
  };
  const handler = createHandler(cache, handlerOptions);
  const port = (address: string | undefined, port: number, h: Handler, setting: string) =>
    listenOn(
      setting,
      address,
      port,
      () => servePort({ address, port, handler: h, limits: config.limits, isLocal, log }),
    );
  const server = port(config.listenAddress, config.listenPort, handler, "LISTEN_ADDRESS");
  const probes = config.probePort
    ? port(
      config.probeAddress,
      config.probePort,
      createHandler(cache, { ...handlerOptions, healthOnly: true }),
      "PROBE_ADDRESS",
    )
    : undefined;
  const addr = server.addr;
  log.log("info", "started", {
    listen: hostPort(addr),
    probes: probes ? hostPort(probes.addr) : undefined,
    server: conn.server,
    mode: conn.mode,
    watch: cache.selection.describe(),
  });
  logIdentity(log, pod);
  const watches = Promise.all(reflectors.map((r) => r.run(signal)));
  const servers = [server, probes].filter((s) => s !== undefined);
  const stop = () => {
    drain.abort();
    void watchers.drained().then(() => Promise.all(servers.map((s) => s.shutdown())));
  };
  // A stop signal may have come while this was starting (making the connection): stop now.
  if (signal.aborted) stop();
  else signal.addEventListener("abort", stop, { once: true });
  const finished = Promise.all([server.finished, probes?.finished, watches])
    .then(() => conn.close());
  return { addr, finished };
}

/** `host:port`, with an IPv6 host in brackets: `[::]:8080`. */
function hostPort(addr: Deno.NetAddr): string {
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}
