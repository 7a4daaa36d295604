/**
 * This Pod's identity at start: the settings fed by the downward API (`--pod-name`,
 * `--pod-namespace`, `--pod-ips`, or `POD_NAME`, `POD_NAMESPACE`, `POD_IPS`/`POD_IP`), and where
 * one is missing, the fallback that needs nothing: the name from the hostname (a Pod's hostname
 * is its name unless `spec.hostname` is set, cut to 63 characters; with `setHostnameAsFQDN`, the
 * first label of the FQDN), the namespace from the service-account mount's `namespace` file.
 * There is no fallback for the IPs: without them an endpoint is this Pod by its `targetRef`
 * only. What is used is logged once, in one line.
 *
 * @module
 */
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { knowsSelf, type PodIdentity, selfMatcher } from "./self.ts";

/** Options for {@linkcode resolveIdentity}. */
export interface ResolveIdentityOptions {
  /** The hostname. Default: `$HOSTNAME` (the container runtime sets it), else `Deno.hostname()`
   * where permitted. */
  hostname?: () => string | undefined;
  /** Reads a small text file; undefined when it cannot. Default: `Deno.readTextFileSync`. */
  readFile?: (path: string) => string | undefined;
}

/** The identity and, for the start log, where each part came from. */
export interface ResolvedIdentity {
  /** What the sidecar matches endpoints against. */
  identity: PodIdentity;
  /** The setting or fallback each part came from; undefined where none gave it. */
  from: { name?: string; namespace?: string; ips?: string };
}

/** Resolves this Pod's identity from the settings and the fallbacks. */
export function resolveIdentity(
  config: Pick<Config, "podName" | "podNamespace" | "podIps" | "podSources" | "serviceAccountDir">,
  options: ResolveIdentityOptions = {},
): ResolvedIdentity {
  const from: ResolvedIdentity["from"] = { ...config.podSources };
  let namespace = config.podNamespace;
  if (namespace === undefined) {
    const path = `${config.serviceAccountDir}/namespace`;
    const text = (options.readFile ?? readFile)(path)?.trim();
    if (text) {
      namespace = text;
      from.namespace = path;
    }
  }
  let name = config.podName;
  if (name === undefined) {
    const host = (options.hostname ?? defaultHostname)()?.trim().toLowerCase();
    // A hostname that is not a DNS name (a machine outside Kubernetes) names no Pod.
    if (host && /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(host)) {
      name = podNameOf(host, namespace);
      from.name = "hostname";
    }
  }
  return { identity: { name, namespace, ips: config.podIps }, from };
}

/** The Pod name a hostname gives: a Pod with `setHostnameAsFQDN` (and a `subdomain`) has
 * `<hostname>.<subdomain>.<namespace>.svc.<cluster domain>`, whose first label is the name
 * (StatefulSets set `spec.hostname` to it); any other hostname is the name itself. */
function podNameOf(host: string, namespace: string | undefined): string {
  const labels = host.split(".");
  const fqdn = namespace !== undefined && labels.length > 4 && labels[2] === namespace &&
    labels[3] === "svc";
  return fqdn ? labels[0]! : host;
}

/** Logs, once at start, which identity the sidecar uses and how it matches its endpoints. */
export function logIdentity(log: Logger, resolved: ResolvedIdentity): void {
  const { identity, from } = resolved;
  const m = selfMatcher(identity);
  const match = m.byRef
    ? (m.ips.size ? "targetRef name and namespace, and address" : "targetRef name and namespace")
    : m.ips.size
    ? "address"
    : "none";
  const fields: Record<string, unknown> = {
    name: identity.name,
    namespace: identity.namespace,
    ips: identity.ips,
    from,
    match,
  };
  if (!knowsSelf(m)) {
    fields.note = "no self marks and no ?exclude=self: set POD_NAME and POD_NAMESPACE " +
      "(or POD_IPS) from the downward API";
  } else if (from.name === "hostname") {
    fields.note = "the name is the hostname: right unless the Pod sets spec.hostname or its " +
      "name is longer than 63 characters; set POD_NAME from the downward API to be sure";
  }
  log.log("info", "pod identity", fields);
}

function defaultHostname(): string | undefined {
  try {
    const h = Deno.env.get("HOSTNAME");
    if (h) return h;
  } catch {
    // Not permitted: try the system call.
  }
  try {
    return Deno.hostname();
  } catch {
    return undefined;
  }
}

function readFile(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}
