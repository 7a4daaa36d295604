/**
 * Wires the parts together: a connection to the API server, one cache, one EndpointSlice
 * reflector per namespace (one watch connection per namespace, not per Service; plus a Service
 * watch in selector mode), the metrics and the HTTP server, all stopped by one AbortSignal, in
 * order: blocking queries and SSE streams end first with complete answers (the drain signal),
 * then the HTTP server drains, then the watches stop.
 *
 * @module
 */
import { EndpointCache, SERVICE_NAME_LABEL } from "./cache.ts";
import type { Watched } from "./selection.ts";
import { localClients } from "./access.ts";
import { type Config, ConfigError } from "./config.ts";
import { HealthRegistry } from "./health.ts";
import { countEndpoints } from "./service_view.ts";
import { connect, type KubeConnection } from "./kube_client.ts";
import type { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { OpenWatchers } from "./open_watchers.ts";
import { shareConnection } from "./shared_connection.ts";
import { Reflector } from "./reflector.ts";
import { createHandler, type Handler, type HandlerOptions } from "./routes/table.ts";
import { servePort } from "./listeners.ts";
import { logIdentity, resolveIdentity } from "./self_identity.ts";
import { DRAIN_MS } from "./sse.ts";

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

/** What to watch in each namespace, from the settings and the default namespace. */
export function watchPlan(config: Config, defaultNs: string): Map<string, Watched> {
  const plan = new Map<string, Watched>();
  if (config.services.length) {
    for (const s of config.services) {
      const ns = s.namespace || defaultNs;
      const w = plan.get(ns);
      if (w?.kind === "names") w.names.push(s.name);
      else plan.set(ns, { kind: "names", names: [s.name] });
    }
    return plan;
  }
  const namespaces = config.namespaces.length ? config.namespaces : [defaultNs];
  for (const ns of namespaces) {
    plan.set(
      ns,
      config.serviceSelector ? { kind: "selector", selector: config.serviceSelector } : {
        kind: "all",
      },
    );
  }
  return plan;
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
  const reflectors: Reflector[] = [];
  for (const [namespace, watched] of plan) {
    const common = { namespace, connection: shared, log, idleTimeoutMs: config.watchIdleTimeoutMs };
    reflectors.push(
      new Reflector(cache.sliceStore(namespace), {
        ...common,
        labelSelector: watched.kind === "names" ? selectorFor(watched.names) : undefined,
      }),
    );
    if (watched.kind === "selector") {
      reflectors.push(
        new Reflector(cache.serviceStore(namespace), {
          ...common,
          resource: { group: "", version: "v1", plural: "services" },
          labelSelector: watched.selector,
        }),
      );
    }
  }
  const health = new HealthRegistry();
  for (const r of reflectors) health.add(r.health);
  const watchers = new OpenWatchers();
  const drain = new AbortController();
  const metrics = sidecarMetrics(cache, reflectors, watchers);
  const pod = resolveIdentity(config);
  const first = config.services[0];
  const isLocal = localClients(config.localClients);
  const handlerOptions: HandlerOptions = {
    primary: first ? { namespace: first.namespace || defaultNs, name: first.name } : undefined,
    self: { nodeName: config.nodeName, zone: config.zone },
    pod: pod.identity,
    maxWatchers: config.maxWatchers,
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
    void drained(watchers).then(() => Promise.all(servers.map((s) => s.shutdown())));
  };
  // A stop signal may have come while this was starting (making the connection): stop now.
  if (signal.aborted) stop();
  else signal.addEventListener("abort", stop, { once: true });
  const finished = Promise.all([server.finished, probes?.finished, watches])
    .then(() => conn.close());
  return { addr, finished };
}

/**
 * Listens (lib/listeners.ts). An address the host does not have is a bad setting (exit 2), not
 * a crash; so is a Deno without `--unstable-net` (SO_REUSEPORT, which the listeners need).
 */
function listenOn<T>(setting: string, address: string | undefined, listen: () => T): T {
  try {
    return listen();
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) throw e;
    const message = (e as Error).message;
    if (/unstable-net/.test(message)) {
      throw new ConfigError(
        "Cannot listen: the listeners need Deno's --unstable-net (SO_REUSEPORT); run with it, " +
          "as deno.json and image/deno-flags.txt do",
      );
    }
    const flag = setting.toLowerCase().replace("_", "-");
    throw new ConfigError(
      `Cannot listen on --${flag} / KUBERNETES_POD_DISCOVERY_${setting} ` +
        `${JSON.stringify(address)}: ${message}; ` +
        "use an address of this Pod, 127.0.0.1, or leave it unset for every interface",
    );
  }
}

/** `host:port`, with an IPv6 host in brackets: `[::]:8080`. */
function hostPort(addr: Deno.NetAddr): string {
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

/** Longest wait for blocking queries and SSE streams to end after the drain signal: they end
 * at once (the current state is in memory), and a stream whose client does not read is cut
 * after DRAIN_MS, so this only bounds a stuck client. */
const DRAIN_MAX_MS = DRAIN_MS + 500;
/** After the last long-poll ended, time for its response to be written before the server stops
 * (Deno drops a response that is written after shutdown began). */
const DRAIN_FLUSH_MS = 50;

/** Resolves once no blocking query or SSE stream is open (or after DRAIN_MAX_MS). */
async function drained(watchers: OpenWatchers): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    watchers.idle(),
    new Promise((r) => timer = setTimeout(r, DRAIN_MAX_MS)),
  ]).finally(() => clearTimeout(timer));
  await new Promise((r) => setTimeout(r, DRAIN_FLUSH_MS));
}

/**
 * Longest label selector sent; past it the namespace is watched whole and the cache keeps only
 * the named Services. Deno's fetch refuses URLs of 65,535 characters or more (measured in
 * bench/: with 991 long names the list fitted but the watch did not, and the view silently
 * stopped updating), and watching every slice of the namespace costs the API server no more
 * than one selector-filtered watch.
 */
const MAX_SELECTOR_LENGTH = 4_000;

function selectorFor(names: string[]): string | undefined {
  const selector = names.length === 1
    ? `${SERVICE_NAME_LABEL}=${names[0]}`
    : `${SERVICE_NAME_LABEL} in (${names.join(",")})`;
  return selector.length > MAX_SELECTOR_LENGTH ? undefined : selector;
}

function sidecarMetrics(
  cache: EndpointCache,
  reflectors: Reflector[],
  watchers: OpenWatchers,
): Metrics {
  const m = new Metrics();
  m.counter("kpd_http_requests_total", "HTTP requests by route and status code");
  m.gauge(
    "kpd_endpoints",
    "Endpoints per watched Service by state",
    () =>
      cache.views().flatMap((v) => {
        const base = { namespace: v.namespace, service: v.name };
        const n = countEndpoints(v.endpoints);
        return [
          [{ ...base, state: "ready" }, n.ready],
          [{ ...base, state: "serving" }, n.serving],
          [{ ...base, state: "terminating" }, n.terminating],
          [{ ...base, state: "all" }, n.total],
        ] as [Record<string, string>, number][];
      }),
  );
  // 0 for a watched Service that does not exist: the controller keeps a slice for every other.
  m.gauge(
    "kpd_endpoint_slices",
    "EndpointSlices per watched Service; 0: the Service does not exist (or has no selector)",
    () =>
      cache.views().map((v) =>
        [
          { namespace: v.namespace, service: v.name },
          cache.sliceCount(v.namespace, v.name),
        ] as [Record<string, string>, number]
      ),
  );
  const per = (f: (r: Reflector) => number) => () =>
    reflectors.map((r) => [r.labels, f(r)] as [Record<string, string>, number]);
  m.gauge(
    "kpd_watch_starts_total",
    "Watch requests started",
    per((r) => r.stats.watches),
    "counter",
  );
  m.gauge(
    "kpd_lists_total",
    "Complete lists (first sync and relists)",
    per((r) => r.stats.lists),
    "counter",
  );
  m.gauge(
    "kpd_watch_expired_total",
    "410 Gone answers that forced a relist",
    per((r) => r.stats.expired),
    "counter",
  );
  m.gauge("kpd_watch_events_total", "Watch events applied", per((r) => r.stats.events), "counter");
  m.gauge(
    "kpd_backoff_seconds",
    "Current backoff before the next try; 0 when healthy",
    per((r) => r.stats.backoffMs / 1000),
  );
  m.gauge(
    "kpd_last_event_age_seconds",
    "Seconds since the last watch event or bookmark",
    per((r) => r.stats.lastEventAt ? (Date.now() - r.stats.lastEventAt) / 1000 : -1),
  );
  m.gauge("kpd_open_watchers", "Open SSE streams and blocking queries", () => [
    [{ kind: "sse" }, watchers.sse],
    [{ kind: "blocking" }, watchers.blocking],
  ]);
  m.gauge(
    "kpd_sse_slow_closed_total",
    "SSE streams closed because they held too much unsent for too long (the client stopped reading)",
    () => [[{}, watchers.sseSlowClosed]],
    "counter",
  );
  m.gauge(
    "kpd_ready",
    "1 once every namespace had a complete list",
    () => [[{}, cache.ready ? 1 : 0]],
  );
  // What a memory limit is set against: the process's resident memory, and the part of it that
  // is the JavaScript heap (the rest is the runtime: its code, TLS, HTTP).
  m.gauge(
    "process_resident_memory_bytes",
    "Resident memory of the process",
    () => [[{}, Deno.memoryUsage().rss]],
  );
  m.gauge("kpd_js_heap_bytes", "JavaScript heap by kind (used, total committed)", () => {
    const u = Deno.memoryUsage();
    return [[{ kind: "used" }, u.heapUsed], [{ kind: "total" }, u.heapTotal]];
  });
  return m;
}
