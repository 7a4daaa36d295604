/**
 * Settings of the sidecar: each one a flag and an environment variable (the three names of the
 * Go kubernetes-pod-discovery kept as they were), validated at start. A bad value is reported as
 * one {@linkcode ConfigError} line that names the setting and how to fix it.
 *
 * @module
 */
import { type AddressRange, parseRange } from "./access.ts";
import { labelSelectorProblem } from "./label_selector.ts";
import { LOG_LEVELS, type LogLevel } from "./log.ts";
import { canonicalIp } from "./self.ts";
import type { ConnectionLimits } from "./remote_gate.ts";
import { WATCH_IDLE_TIMEOUT_MS } from "./watch_stream.ts";

/** The API server's watch bookmark period (s, `defaultBookmarkFrequency` of the cacher): a
 * shorter idle timeout would restart healthy quiet watches. */
export const BOOKMARK_PERIOD_S = 60;

/** Default cap on connections from outside the Pod, per listener: 1,000 idle keep-alive ones
 * cost ~40 MB (~40 KB each, a half-open one ~14 KB: README "Security"), which fits beside the
 * ~60 MB idle process well within the examples' 256Mi limit. */
export const DEFAULT_MAX_REMOTE_CONNECTIONS = 1000;

/** Default of `--max-watchers`: open SSE streams and blocking queries at once. A Pod has a few
 * clients; the limit bounds a runaway one. */
export const DEFAULT_MAX_WATCHERS = 1000;

/** Where the pod's service account is mounted by the kubelet. */
export const DEFAULT_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The validated settings. */
export interface Config {
  /** Services to watch by name; a namespace of "" means the default one. Empty in the other
   * modes. */
  services: { namespace: string; name: string }[];
  /** Label selector on Services: watch those it picks in `namespaces`. */
  serviceSelector?: string;
  /** Watch every Service in `namespaces`. */
  allServices: boolean;
  /** Namespaces of the selector and all-services modes; empty means the default one. */
  namespaces: string[];
  /** The pod's node (downward API spec.nodeName), for `?node=prefer`. */
  nodeName?: string;
  /** The pod's zone, for `?zonal=` without `zone`. */
  zone?: string;
  /** This Pod's name (downward API metadata.name); undefined: the hostname, resolved at start. */
  podName?: string;
  /** This Pod's namespace (downward API metadata.namespace); undefined: the service-account
   * mount's, resolved at start. */
  podNamespace?: string;
  /** This Pod's IPs (downward API status.podIPs or status.podIP), canonical; may be empty. */
  podIps: string[];
  /** Where each Pod identity setting came from (a flag or variable name), for the start log. */
  podSources: { name?: string; namespace?: string; ips?: string };
  /** /readyz answers 503 once the watch has been broken this long (ms); 0: never. */
  readyMaxStalenessMs: number;
  /** At most this many SSE streams and blocking queries at once; more get 429. */
  maxWatchers: number;
  /** Namespace of services given without one; undefined means the pod's or context's own. */
  namespace?: string;
  /** Address to listen on; undefined: every interface (`::`, dual-stack, else `0.0.0.0`). */
  listenAddress?: string;
  listenPort: number;
  /** Serve the endpoint data and /v1 to clients outside the Pod too (default: loopback only). */
  allowRemoteData: boolean;
  /** A second listener for the kubelet's probes only (/livez, /readyz, /health); 0: none. */
  probePort: number;
  /** Address of the probe listener; undefined: every interface, as the main one. */
  probeAddress?: string;
  /** Addresses and ranges counted as the Pod's own containers beside 127.0.0.1 and ::1. */
  localClients: AddressRange[];
  /** Limits on connections from outside the Pod (lib/remote_gate.ts). */
  limits: ConnectionLimits;
  /** Explicit kubeconfig path (flag or KUBECONFIG); undefined means in-cluster if possible. */
  kubeconfig?: string;
  /** The kubeconfig context to use; undefined means its current context. */
  context?: string;
  serviceAccountDir: string;
  logLevel: LogLevel;
  /** Abort a watch that has sent nothing (not even a bookmark) for this long, in ms. */
  watchIdleTimeoutMs: number;
}

/** A setting that cannot be used; its message is the one line to print. */
export class ConfigError extends Error {
  /** Creates the error with its one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

interface Setting {
  flag: string;
  boolean?: boolean;
  env: string[];
  help: string;
  default?: string;
}

const ENV = "KUBERNETES_POD_DISCOVERY_";

/** Every setting: its flag, its environment variables (first wins), what it is, its default. */
export const SETTINGS: Record<string, Setting> = {
  service: {
    flag: "service-name",
    env: [ENV + "SERVICE_NAME"],
    help: "Service(s) to watch: name or namespace/name, comma-separated",
  },
  serviceSelector: {
    flag: "service-selector",
    env: [ENV + "SERVICE_SELECTOR"],
    help: "watch the Services this label selector picks (e.g. tier=db) in --namespaces",
  },
  allServices: {
    flag: "all-services",
    env: [ENV + "ALL_SERVICES"],
    help: "watch every Service in --namespaces (true or false)",
    default: "false",
    boolean: true,
  },
  namespaces: {
    flag: "namespaces",
    env: [ENV + "NAMESPACES"],
    help: "namespaces of --service-selector and --all-services, comma-separated " +
      "(default: --namespace)",
  },
  nodeName: {
    flag: "node-name",
    env: [ENV + "NODE_NAME"],
    help: "this pod's node, for ?node=prefer (downward API: spec.nodeName)",
  },
  zone: {
    flag: "zone",
    env: [ENV + "ZONE"],
    help: "this pod's zone, for ?zonal=pin|prefer without ?zone=",
  },
  podName: {
    flag: "pod-name",
    env: [ENV + "POD_NAME", "POD_NAME"],
    help: "this Pod's name, for the self marks and ?exclude=self (downward API: metadata.name; " +
      "default: the hostname, which is the Pod's name unless spec.hostname is set)",
  },
  podNamespace: {
    flag: "pod-namespace",
    env: [ENV + "POD_NAMESPACE", "POD_NAMESPACE"],
    help: "this Pod's namespace (downward API: metadata.namespace; default: the namespace file " +
      "of --service-account-dir)",
  },
  podIps: {
    flag: "pod-ips",
    env: [ENV + "POD_IPS", "POD_IPS", "POD_IP"],
    help: "this Pod's IPs, comma-separated (downward API: status.podIPs, or status.podIP)",
  },
  readyMaxStaleness: {
    flag: "ready-max-staleness",
    env: [ENV + "READY_MAX_STALENESS"],
    help: "/readyz turns 503 when the watch has been broken this long (s); 0: never",
    default: "0",
  },
  maxWatchers: {
    flag: "max-watchers",
    env: [ENV + "MAX_WATCHERS"],
    help: "at most this many SSE streams and blocking queries at once; more get 429",
    default: String(DEFAULT_MAX_WATCHERS),
  },
  namespace: {
    flag: "namespace",
    env: [ENV + "NAMESPACE"],
    help: "namespace of services named without one (default: the pod's own namespace)",
  },
  listenAddress: {
    flag: "listen-address",
    env: [ENV + "LISTEN_ADDRESS"],
    help: "IP address to serve on (default: every interface, :: dual-stack, else 0.0.0.0: the " +
      "kubelet's probes reach the Pod's IP, the endpoint data is served to loopback clients " +
      "only); 127.0.0.1 for a loopback-only listener",
  },
  allowRemoteData: {
    flag: "allow-remote-data",
    env: [ENV + "ALLOW_REMOTE_DATA"],
    help: "also serve /endpoints and /v1 to clients outside the Pod (true or false); health " +
      "routes and /metrics are served to every client",
    default: "false",
    boolean: true,
  },
  listenPort: {
    flag: "listen-port",
    env: [ENV + "LISTEN_PORT"],
    help: "port to serve on (0: any free port, printed in the started log line)",
    default: "8080",
  },
  probePort: {
    flag: "probe-port",
    env: [ENV + "PROBE_PORT"],
    help: "also serve only /livez, /readyz and /health here, for the kubelet's probes (which " +
      "reach the pod IP, not 127.0.0.1); 0: off",
    default: "0",
  },
  probeAddress: {
    flag: "probe-address",
    env: [ENV + "PROBE_ADDRESS"],
    help: "address of the probe listener (default: every interface, :: dual-stack, else 0.0.0.0)",
  },
  localClients: {
    flag: "local-clients",
    env: [ENV + "LOCAL_CLIENTS"],
    help: "addresses or CIDR ranges counted as this Pod's own containers beside 127.0.0.1 and " +
      "::1, comma-separated (e.g. 127.0.0.0/8; a service mesh's inbound proxy connects from " +
      "127.0.0.6, so widening to it serves the data to the mesh's clients)",
  },
  headerTimeout: {
    flag: "header-timeout",
    env: [ENV + "HEADER_TIMEOUT"],
    help: "a client outside the Pod must finish each request's headers within this many seconds " +
      "(nginx's client_header_timeout)",
    default: "60",
  },
  idleTimeout: {
    flag: "idle-timeout",
    env: [ENV + "IDLE_TIMEOUT"],
    help: "a connection from outside the Pod on which nothing moved this many seconds is closed " +
      "(nginx's keepalive_timeout)",
    default: "75",
  },
  maxRemoteConnections: {
    flag: "max-remote-connections",
    env: [ENV + "MAX_REMOTE_CONNECTIONS"],
    help: "connections from outside the Pod held at once, per listener; more are closed at once",
    default: String(DEFAULT_MAX_REMOTE_CONNECTIONS),
  },
  maxConnectionsPerClient: {
    flag: "max-connections-per-client",
    env: [ENV + "MAX_CONNECTIONS_PER_CLIENT"],
    help: "connections held at once per client address outside the Pod, per listener " +
      "(Consul's http_max_conns_per_client)",
    default: "200",
  },
  kubeconfig: {
    flag: "kubeconfig",
    env: ["KUBECONFIG"],
    help: "kubeconfig to use instead of the in-cluster service account",
  },
  context: {
    flag: "context",
    env: [ENV + "CONTEXT"],
    help: "kubeconfig context (default: its current context)",
  },
  serviceAccountDir: {
    flag: "service-account-dir",
    env: [ENV + "SERVICE_ACCOUNT_DIR"],
    help: "directory of the mounted service-account token, ca.crt and namespace",
    default: DEFAULT_SERVICE_ACCOUNT_DIR,
  },
  logLevel: {
    flag: "log-level",
    env: [ENV + "LOG_LEVEL"],
    help: "debug, info, warn or error",
    default: "info",
  },
  watchIdleTimeout: {
    flag: "watch-idle-timeout",
    env: [ENV + "WATCH_IDLE_TIMEOUT"],
    help: "restart a watch silent this long (s), at least 60 (the API server's bookmark " +
      "period); a dead connection is noticed sooner, by a probe after 30 s of silence",
    default: String(WATCH_IDLE_TIMEOUT_MS / 1000),
  },
};

/** The `--help` text: every setting with its flag, variable and default. */
export function helpText(): string {
  const lines = [
    "kubernetes-pod-discovery: serves the endpoints of Kubernetes Services on localhost.",
    "",
    "Settings (flag, then environment variable; the flag wins):",
  ];
  for (const s of Object.values(SETTINGS)) {
    const def = s.default === undefined ? "" : ` (default ${s.default})`;
    lines.push(`  --${s.flag}, ${s.env.join(", ")}`, `      ${s.help}${def}`);
  }
  lines.push("  --help", "      print this text and exit");
  return lines.join("\n");
}

function parseFlags(args: string[]): Map<string, string> {
  const byFlag = new Map(Object.values(SETTINGS).map((s) => [s.flag, s]));
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (!m || !byFlag.has(m[1]!)) {
      throw new ConfigError(`Unknown argument ${JSON.stringify(arg)}: see --help for the settings`);
    }
    let value = m[2];
    if (value === undefined && byFlag.get(m[1]!)!.boolean) value = "true";
    if (value === undefined) {
      value = args[++i];
      if (value === undefined) throw new ConfigError(`--${m[1]} needs a value: --${m[1]}=VALUE`);
    }
    out.set(m[1]!, value);
  }
  return out;
}

/** Options for {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /** Environment lookup. Default: `Deno.env.get`. */
  env?: (name: string) => string | undefined;
}

/** Parses and validates flags and environment into a {@linkcode Config}; throws ConfigError. */
export function loadConfig(args: string[], options: LoadConfigOptions = {}): Config {
  const env = options.env ?? ((n: string) => Deno.env.get(n));
  const flags = parseFlags(args);
  const raw = (key: string): { value?: string; source: string } => {
    const s = SETTINGS[key]!;
    if (flags.has(s.flag)) return { value: flags.get(s.flag), source: `--${s.flag}` };
    for (const name of s.env) {
      const v = env(name);
      if (v !== undefined) return { value: v, source: name };
    }
    return { value: s.default, source: `--${s.flag}` };
  };
  const namespace = raw("namespace").value?.trim() || undefined;
  if (namespace !== undefined) checkDnsLabel(namespace, raw("namespace").source);
  const listenPort = parsePort(raw("listenPort"));
  const listenAddress = parseAddress(raw("listenAddress"));
  const level = raw("logLevel");
  if (!LOG_LEVELS.includes(level.value as LogLevel)) {
    throw new ConfigError(
      `Cannot parse ${level.source}: ${JSON.stringify(level.value)} is not one of ${
        LOG_LEVELS.join(", ")
      }`,
    );
  }
  const idle = raw("watchIdleTimeout");
  const idleS = Number(idle.value);
  if (!Number.isFinite(idleS) || idleS < 1 || idleS > 3600) {
    throw new ConfigError(
      `Cannot parse ${idle.source}: ${
        JSON.stringify(idle.value)
      } is not a number of seconds from ${BOOKMARK_PERIOD_S} to 3600`,
    );
  }
  if (idleS < BOOKMARK_PERIOD_S) {
    throw new ConfigError(
      `Cannot use ${idle.source}=${idle.value}: below the API server's bookmark period ` +
        `(${BOOKMARK_PERIOD_S} s) it would restart healthy quiet watches; set ${BOOKMARK_PERIOD_S} ` +
        `or more (a dead connection is noticed within 45 s by a probe regardless)`,
    );
  }
  const selector = raw("serviceSelector").value?.trim() || undefined;
  const selectorProblem = selector === undefined ? undefined : labelSelectorProblem(selector);
  if (selectorProblem) {
    throw new ConfigError(
      `Cannot parse ${raw("serviceSelector").source}: ${JSON.stringify(selector)} is not a ` +
        `label selector (${selectorProblem}); use e.g. app=web or "tier in (front,back)"`,
    );
  }
  const all = parseBool(raw("allServices"));
  const names = raw("service");
  const modes = [!!names.value?.trim(), !!selector, all].filter(Boolean).length;
  if (modes > 1) {
    throw new ConfigError(
      "Set only one of --service-name, --service-selector and --all-services " +
        "(or their KUBERNETES_POD_DISCOVERY_* variables)",
    );
  }
  const allowRemoteData = parseBool(raw("allowRemoteData"));
  if (
    listenAddress !== undefined && !allowRemoteData && !/^127\./.test(listenAddress) &&
    listenAddress !== "::1" && listenAddress !== "::" && listenAddress !== "0.0.0.0"
  ) {
    const src = raw("listenAddress").source;
    throw new ConfigError(
      `Cannot use ${src}=${listenAddress} without --allow-remote-data: the Pod's own ` +
        "containers would connect from that address, not loopback, and be refused the data; " +
        "leave it unset (every interface, data for loopback clients), use 127.0.0.1, or set " +
        "--allow-remote-data / KUBERNETES_POD_DISCOVERY_ALLOW_REMOTE_DATA=true",
    );
  }
  const pod = parsePod(raw);
  const namespaces = (raw("namespaces").value ?? "").split(",").map((s) => s.trim())
    .filter((s) => s !== "");
  for (const ns of namespaces) checkDnsLabel(ns, raw("namespaces").source);
  return {
    services: modes === 0 || names.value?.trim() ? parseServices(names, namespace) : [],
    serviceSelector: selector,
    allServices: all,
    namespaces,
    nodeName: raw("nodeName").value?.trim() || undefined,
    zone: raw("zone").value?.trim() || undefined,
    ...pod,
    readyMaxStalenessMs: parseSeconds(raw("readyMaxStaleness"), 0, 86_400) * 1000,
    maxWatchers: parseSeconds(raw("maxWatchers"), 1, 100_000),
    namespace,
    listenAddress,
    listenPort,
    allowRemoteData,
    probePort: parsePort(raw("probePort")),
    probeAddress: parseAddress(raw("probeAddress")),
    localClients: parseRanges(raw("localClients")),
    limits: {
      headerTimeoutMs: parseSeconds(raw("headerTimeout"), 1, 3600) * 1000,
      idleTimeoutMs: parseSeconds(raw("idleTimeout"), 1, 3600) * 1000,
      maxConnections: parseSeconds(raw("maxRemoteConnections"), 1, 1_000_000),
      maxPerClient: parseSeconds(raw("maxConnectionsPerClient"), 1, 1_000_000),
    },
    kubeconfig: raw("kubeconfig").value?.trim() || undefined,
    context: raw("context").value?.trim() || undefined,
    serviceAccountDir: raw("serviceAccountDir").value || DEFAULT_SERVICE_ACCOUNT_DIR,
    logLevel: level.value as LogLevel,
    watchIdleTimeoutMs: idleS * 1000,
  };
}

/** This Pod's identity settings, validated: a DNS subdomain name, a namespace, IPs. */
function parsePod(
  raw: (key: string) => { value?: string; source: string },
): Pick<Config, "podName" | "podNamespace" | "podIps" | "podSources"> {
  const name = raw("podName"), namespace = raw("podNamespace"), ips = raw("podIps");
  const podName = name.value?.trim() || undefined;
  if (podName !== undefined && !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(podName)) {
    throw new ConfigError(
      `Cannot parse ${name.source}: ${
        JSON.stringify(podName)
      } is not a Pod name (lowercase letters, digits, '-' and '.'); set it from the downward ` +
        "API fieldRef metadata.name",
    );
  }
  const podNamespace = namespace.value?.trim() || undefined;
  if (podNamespace !== undefined) checkDnsLabel(podNamespace, namespace.source);
  const podIps: string[] = [];
  for (const item of (ips.value ?? "").split(/[\s,]+/).filter((s) => s !== "")) {
    const ip = canonicalIp(item);
    if (ip === undefined) {
      throw new ConfigError(
        `Cannot parse ${ips.source}: ${
          JSON.stringify(item)
        } is not an IP address; set it from the downward API fieldRef status.podIPs ` +
          "(comma-separated) or status.podIP",
      );
    }
    if (!podIps.includes(ip)) podIps.push(ip);
  }
  return {
    podName,
    podNamespace,
    podIps,
    podSources: {
      name: podName && name.source,
      namespace: podNamespace && namespace.source,
      ips: podIps.length ? ips.source : undefined,
    },
  };
}

/** An IP address to listen on (brackets around IPv6 accepted); undefined when unset. */
function parseAddress(r: { value?: string; source: string }): string | undefined {
  const v = (r.value ?? "").trim().replace(/^\[(.*)\]$/, "$1");
  if (v === "") return undefined;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v);
  if (v4 ? v4.slice(1).every((o) => Number(o) <= 255) : v.includes(":") && isIPv6(v)) return v;
  throw new ConfigError(
    `Cannot parse ${r.source}: ${
      JSON.stringify(r.value)
    } is not an IP address (e.g. 127.0.0.1, ::, 0.0.0.0); the port is a separate setting`,
  );
}

function parseRanges(r: { value?: string; source: string }): AddressRange[] {
  return (r.value ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
    const range = parseRange(s);
    if (!range) {
      throw new ConfigError(
        `Cannot parse ${r.source}: ${JSON.stringify(s)} is not an IP address or CIDR range ` +
          "(e.g. 127.0.0.6, 127.0.0.0/8, fd00::/64)",
      );
    }
    return range;
  });
}

function isIPv6(v: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(v)) return false;
  try {
    new URL(`http://[${v}]/`);
    return true;
  } catch {
    return false;
  }
}

function parseBool(r: { value?: string; source: string }): boolean {
  const v = (r.value ?? "").trim().toLowerCase();
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0" || v === "") return false;
  throw new ConfigError(
    `Cannot parse ${r.source}: ${JSON.stringify(r.value)} is not true or false`,
  );
}

function parseSeconds(r: { value?: string; source: string }, min: number, max: number): number {
  const n = Number(r.value);
  if (!/^\d+$/.test((r.value ?? "").trim()) || n < min || n > max) {
    throw new ConfigError(
      `Cannot parse ${r.source}: ${JSON.stringify(r.value)} is not a whole number from ${min} ` +
        `to ${max}`,
    );
  }
  return n;
}

function parsePort(r: { value?: string; source: string }): number {
  const v = (r.value ?? "").trim();
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) {
    throw new ConfigError(
      `Cannot parse ${r.source}: ${
        JSON.stringify(r.value)
      } is not a port number from 1 to 65535 (0: any free port)`,
    );
  }
  return n;
}

/** Services keep an empty namespace ("") until the pod's own namespace is known. */
function parseServices(
  r: { value?: string; source: string },
  namespace: string | undefined,
): { namespace: string; name: string }[] {
  const items = (r.value ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) {
    throw new ConfigError(
      `${r.source} is empty: set it to the name of the Service to watch, e.g. ${r.source}=web ` +
        "(or use --service-selector or --all-services)",
    );
  }
  return items.map((item) => {
    const parts = item.split("/");
    if (parts.length > 2) {
      throw new ConfigError(
        `Cannot parse ${r.source}: ${JSON.stringify(item)} is not "name" or "namespace/name"`,
      );
    }
    const name = parts.pop()!;
    const ns = parts.pop() ?? namespace ?? "";
    checkDnsLabel(name, r.source);
    if (ns !== "") checkDnsLabel(ns, r.source);
    return { namespace: ns, name };
  });
}

function checkDnsLabel(value: string, source: string): void {
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(value)) {
    throw new ConfigError(
      `Cannot parse ${source}: ${
        JSON.stringify(value)
      } is not a valid name (lowercase letters, digits and '-', at most 63)`,
    );
  }
}
