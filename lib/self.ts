/**
 * Who this sidecar is, and which endpoints of a Service are its own Pod: the pure functions
 * behind the `self` marks of the /v1 bodies and `?exclude=self`. An endpoint is this Pod when its
 * `targetRef` names this Pod (name and namespace), or when it carries one of this Pod's IPs. The
 * two must agree: an endpoint that one of them calls this Pod and the other contradicts is still
 * this Pod (never a peer: a clustering app must not join itself), and the contradiction is
 * reported ({@linkcode EndpointMatch}) so that it can be logged.
 *
 * @module
 */
import type { EndpointView } from "./endpoints.ts";

/** The Pod the sidecar runs in, as far as it knows. */
export interface PodIdentity {
  /** metadata.name (downward API, or the hostname). */
  name?: string;
  /** metadata.namespace (downward API, or the service-account mount). */
  namespace?: string;
  /** status.podIPs, canonical text (IPv6 lowercase and compressed). */
  ips: readonly string[];
}

/** This Pod's state in a Service: its best endpoint's, `not-listed` when it has none, `unknown`
 * when the sidecar does not know who it is. */
export type SelfState =
  | "ready"
  | "serving"
  | "terminating"
  | "not-ready"
  | "not-listed"
  | "unknown";

/**
 * How an endpoint relates to this Pod: a peer, this Pod, or this Pod with a contradiction:
 * its `targetRef` is this Pod but its address is not one of the configured IPs of its family
 * (`self-other-address`), or its address is a configured IP but its `targetRef` another Pod
 * (`self-other-pod`).
 */
export type EndpointMatch = "peer" | "self" | "self-other-address" | "self-other-pod";

/** An identity prepared for matching endpoints against it. */
export interface SelfMatcher {
  /** What it was made from. */
  readonly identity: PodIdentity;
  /** Whether `targetRef` can be matched: name and namespace are both known. */
  readonly byRef: boolean;
  /** The configured IPs. */
  readonly ips: ReadonlySet<string>;
  /** Address types (`IPv4`, `IPv6`) of the configured IPs: only those can be contradicted. */
  readonly families: ReadonlySet<string>;
}

/** Prepares an identity for {@linkcode matchEndpoint}. */
export function selfMatcher(identity: PodIdentity): SelfMatcher {
  const ips = new Set(identity.ips);
  return {
    identity,
    byRef: !!identity.name && !!identity.namespace,
    ips,
    families: new Set([...ips].map((ip) => ip.includes(":") ? "IPv6" : "IPv4")),
  };
}

/** Whether the matcher can tell this Pod at all (name and namespace, or an IP). */
export function knowsSelf(m: SelfMatcher): boolean {
  return m.byRef || m.ips.size > 0;
}

/**
 * How endpoint `e` of a Service in `namespace` relates to this Pod. A `targetRef` without a
 * namespace is in the Service's (the EndpointSlice controller only lists Pods of its own
 * namespace). Called once per endpoint of each new view, so it allocates nothing.
 */
export function matchEndpoint(e: EndpointView, m: SelfMatcher, namespace: string): EndpointMatch {
  const ref = e.targetRef;
  const refIsPod = ref !== undefined && !!ref.name &&
    (ref.kind === undefined || ref.kind === "Pod");
  const refSelf = m.byRef && refIsPod && ref!.name === m.identity.name &&
    (ref!.namespace || namespace) === m.identity.namespace;
  let addressSelf = false;
  if (m.ips.size) {
    for (const a of e.addresses) if (m.ips.has(a)) addressSelf = true;
  }
  if (refSelf) {
    return addressSelf || !m.families.has(e.addressType) ? "self" : "self-other-address";
  }
  if (addressSelf) return m.byRef && refIsPod ? "self-other-pod" : "self";
  return "peer";
}

/** True for every match that is this Pod, contradicted or not. */
export function isSelfMatch(match: EndpointMatch): boolean {
  return match !== "peer";
}

/** The state of one endpoint, best first: ready; serving (terminating, still serving);
 * terminating; not ready. */
export function endpointState(e: EndpointView): Exclude<SelfState, "not-listed" | "unknown"> {
  if (e.ready) return "ready";
  if (e.serving && e.terminating) return "serving";
  if (e.terminating) return "terminating";
  return "not-ready";
}

const STATE_RANK: Record<SelfState, number> = {
  "ready": 5,
  "serving": 4,
  "not-ready": 3,
  "terminating": 2,
  "not-listed": 1,
  "unknown": 0,
};

/** This Pod's state from its endpoints (one per family and port set): the best of them;
 * `not-listed` without any. */
export function selfState(endpoints: Iterable<EndpointView>): SelfState {
  let best: SelfState = "not-listed";
  for (const e of endpoints) {
    const s = endpointState(e);
    if (STATE_RANK[s] > STATE_RANK[best]) best = s;
  }
  return best;
}

/** An IP address in canonical text (IPv6 lowercase and compressed, as the EndpointSlice
 * controller writes it); undefined when `text` is not an IP address. */
export function canonicalIp(text: string): string | undefined {
  const t = text.trim();
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(t);
  if (v4) {
    const octets = v4.slice(1).map(Number);
    return octets.every((o) => o <= 255) ? octets.join(".") : undefined;
  }
  if (!t.includes(":") || !/^[0-9a-fA-F:.]+$/.test(t)) return undefined;
  try {
    return new URL(`http://[${t}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}
