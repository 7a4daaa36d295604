/**
 * Pure functions over EndpointSlices: merge the slices of one Service into a single,
 * de-duplicated list of endpoints with their ports resolved per slice, and render that list in
 * the v1 Endpoints shape that the Go kubernetes-pod-discovery served.
 *
 * @module
 */
import type {
  V1Endpoint,
  V1EndpointHints,
  V1EndpointSlice,
  V1ObjectReference,
} from "@kubernetes/client-node";

/** One port of an endpoint, as its slice declares it. */
export interface PortView {
  name: string;
  port: number;
  protocol: string;
  appProtocol?: string;
}

/** One endpoint of a Service, merged across its slices. */
export interface EndpointView {
  addresses: string[];
  addressType: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  nodeName?: string;
  zone?: string;
  hostname?: string;
  targetRef?: V1ObjectReference;
  hints?: V1EndpointHints;
  ports: PortView[];
}

/**
 * Distinct port lists kept shared. Past this many the table starts over: sharing is only an
 * optimization, and a Service's slices nearly always declare the same one or two port lists.
 */
const MAX_INTERNED_PORTS = 256;
const internedPorts = new Map<string, PortView[]>();

/** The one shared array for a port list (by its JSON): the slices of a Service that declare the
 * same ports share it, so the walk that collects a Service's ports sees one array, not one per
 * slice version. */
function internPorts(json: string): PortView[] {
  let ports = internedPorts.get(json);
  if (!ports) {
    if (internedPorts.size >= MAX_INTERNED_PORTS) internedPorts.clear();
    internedPorts.set(json, ports = JSON.parse(json) as PortView[]);
  }
  return ports;
}

function portsOf(slice: V1EndpointSlice): PortView[] {
  const ports: PortView[] = [];
  for (const p of slice.ports ?? []) {
    // A port without a number means "all ports"; it has no ip:port to serve.
    if (typeof p.port !== "number") continue;
    const view: PortView = { name: p.name ?? "", port: p.port, protocol: p.protocol ?? "TCP" };
    if (p.appProtocol) view.appProtocol = p.appProtocol;
    ports.push(view);
  }
  return ports.sort((a, b) => compareKeys(a.name, b.name) || a.port - b.port);
}

function viewOf(e: V1Endpoint, slice: V1EndpointSlice, ports: PortView[]): EndpointView {
  // Every field set, in one order: every view has the same shape, so the walks over a big
  // Service's endpoints (filters, counts, serialization) stay monomorphic.
  return {
    addresses: [...e.addresses],
    addressType: slice.addressType,
    // API contract, as kube-proxy reads it: a nil ready means ready, a nil serving means serving.
    ready: e.conditions?.ready ?? true,
    serving: e.conditions?.serving ?? true,
    terminating: e.conditions?.terminating ?? false,
    nodeName: e.nodeName || undefined,
    zone: e.zone || undefined,
    hostname: e.hostname || undefined,
    targetRef: e.targetRef || undefined,
    hints: e.hints || undefined,
    ports,
  };
}

/** How good an endpoint's condition is: ready, then serving, then neither. */
export function endpointRank(e: EndpointView): number {
  return e.ready ? 2 : e.serving ? 1 : 0;
}

/**
 * The endpoints one slice contributes, by merge key (address type, addresses, ports); an endpoint
 * listed twice in the slice appears once, the first with the best condition. A slice of another
 * address type (FQDN) contributes none.
 */
export function sliceEndpoints(slice: V1EndpointSlice): Map<string, EndpointView> {
  const byKey = new Map<string, EndpointView>();
  if (slice.addressType !== "IPv4" && slice.addressType !== "IPv6") return byKey;
  const portsKey = JSON.stringify(portsOf(slice));
  const ports = internPorts(portsKey);
  for (const e of slice.endpoints ?? []) {
    if (!e.addresses?.length) continue;
    const key = `${slice.addressType}|${e.addresses.join(",")}|${portsKey}`;
    const view = viewOf(e, slice, ports);
    const seen = byKey.get(key);
    if (!seen || endpointRank(view) > endpointRank(seen)) byKey.set(key, view);
  }
  return byKey;
}

/**
 * Merges the slices of one Service. An endpoint listed in two slices (as happens while the
 * controller moves it) appears once, with the better condition (ready, then serving; on a tie,
 * the one of the slice whose name sorts first). The result is sorted by merge key (address type,
 * addresses, ports), so equal input gives equal output. lib/merged_service.ts keeps the same
 * result up to date slice by slice.
 */
export function mergeSlices(slices: Iterable<V1EndpointSlice>): EndpointView[] {
  const byKey = new Map<string, EndpointView>();
  const sorted = [...slices].sort((a, b) =>
    compareKeys(a.metadata?.name ?? "", b.metadata?.name ?? "")
  );
  for (const slice of sorted) {
    for (const [key, view] of sliceEndpoints(slice)) {
      const seen = byKey.get(key);
      if (!seen || endpointRank(view) > endpointRank(seen)) byKey.set(key, view);
    }
  }
  return [...byKey.entries()].sort(([a], [b]) => compareKeys(a, b)).map(([, v]) => v);
}

/**
 * Orders strings by code unit. Names here are ASCII; `localeCompare` would load ICU's collation
 * data, about 3.6 MB of resident memory for nothing (measured in bench/).
 */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A v1 EndpointAddress. */
interface V1Address {
  ip: string;
  hostname?: string;
  nodeName?: string;
  targetRef?: V1ObjectReference;
}

/** The v1 Endpoints object (the Go service's JSON shape). */
export interface V1EndpointsShape {
  kind: "Endpoints";
  apiVersion: "v1";
  metadata: { name: string; namespace: string; resourceVersion: string };
  /** null when there is no endpoint, as the Go service sent it (a nil slice). */
  subsets: V1Subset[] | null;
}

/** A v1 EndpointSubset. */
interface V1Subset {
  addresses?: V1Address[];
  notReadyAddresses?: V1Address[];
  ports?: PortView[];
}

/**
 * Renders merged endpoints as a v1 Endpoints object: ready endpoints in `addresses`, not-ready
 * ones in `notReadyAddresses`, terminating ones left out (as the Endpoints controller did), one
 * subset per distinct port set. Like the
 * v1 Endpoints controller it shows one address family: IPv4 when the Service has any, else IPv6.
 */
export function renderV1Endpoints(
  meta: { name: string; namespace: string; resourceVersion: string },
  endpoints: readonly EndpointView[],
): V1EndpointsShape {
  const family = endpoints.some((e) => e.addressType === "IPv4") ? "IPv4" : "IPv6";
  const subsets = new Map<string, V1Subset>();
  for (const e of endpoints) {
    if (e.addressType !== family) continue;
    // The Endpoints controller left terminating Pods out, unless publishNotReadyAddresses
    // (then their slice endpoint is ready, and it stays in addresses).
    if (e.terminating && !e.ready) continue;
    const key = JSON.stringify(e.ports);
    let subset = subsets.get(key);
    if (!subset) {
      subset = {};
      if (e.ports.length) subset.ports = e.ports;
      subsets.set(key, subset);
    }
    const list = e.ready ? (subset.addresses ??= []) : (subset.notReadyAddresses ??= []);
    for (const ip of e.addresses) {
      const a: V1Address = { ip };
      if (e.hostname) a.hostname = e.hostname;
      if (e.nodeName) a.nodeName = e.nodeName;
      if (e.targetRef) a.targetRef = e.targetRef;
      list.push(a);
    }
  }
  const ordered = [...subsets.entries()].sort(([a], [b]) => compareKeys(a, b)).map(([, s]) => {
    // Field order as Go's encoder writes a v1.EndpointSubset.
    const out: V1Subset = {};
    if (s.addresses) out.addresses = s.addresses;
    if (s.notReadyAddresses) out.notReadyAddresses = s.notReadyAddresses;
    if (s.ports) out.ports = s.ports;
    return out;
  });
  // The Go service's v1.Endpoints had no omitempty on `subsets`: none encoded as null.
  return {
    kind: "Endpoints",
    apiVersion: "v1",
    metadata: { ...meta },
    subsets: ordered.length ? ordered : null,
  };
}
