/**
 * EndpointSlice fixtures for the unit tests, built one way: a slice of a Service labelled as the
 * EndpointSlice controller labels it, with one port and the endpoints a test lists. Each test
 * says only what it varies (ports, conditions, the Pod behind an address, node and zone); the
 * rest has one default here, so no test file keeps its own slice builder.
 *
 * @module
 */
import type { V1Endpoint, V1EndpointSlice, V1ObjectMeta } from "@kubernetes/client-node";

/** One endpoint of a fixture slice; a condition left out is absent (nil), as the API allows. */
export interface EndpointFixture {
  /** The endpoint's one address. */
  ip: string;
  /** The `ready` condition; absent unless given. */
  ready?: boolean;
  /** The `serving` condition; absent unless given. */
  serving?: boolean;
  /** The `terminating` condition; absent unless given. */
  terminating?: boolean;
  /** The Pod behind the address (its `targetRef`); none unless given. */
  pod?: string;
  /** The node the endpoint runs on; none unless given. */
  nodeName?: string;
  /** The endpoint's zone; none unless given. */
  zone?: string;
}

/** What a fixture slice varies; each option says its default. */
export interface SliceOptions {
  /** The Service the slice belongs to (its `kubernetes.io/service-name` label). Default `web`. */
  service?: string;
  /** The slice's name. Default `<service>-abc`. */
  name?: string;
  /** The slice's resourceVersion. Default: none. */
  rv?: string;
  /** The namespace of the endpoints' Pods (`targetRef`). Default `ns`. */
  namespace?: string;
  /** The slice's one port number. Default 80. */
  port?: number;
  /** That port's name. Default `http`. */
  portName?: string;
  /** The slice's address type. Default `IPv4`. */
  addressType?: string;
}

/** A slice of `options.service` listing `endpoints`; a bare address is one ready endpoint. */
export function slice(
  endpoints: readonly (string | EndpointFixture)[],
  options: SliceOptions = {},
): V1EndpointSlice {
  const service = options.service ?? "web";
  const metadata: V1ObjectMeta = {
    name: options.name ?? `${service}-abc`,
    labels: { "kubernetes.io/service-name": service },
  };
  if (options.rv !== undefined) metadata.resourceVersion = options.rv;
  return {
    addressType: options.addressType ?? "IPv4",
    metadata,
    ports: [{ name: options.portName ?? "http", port: options.port ?? 80, protocol: "TCP" }],
    endpoints: endpoints.map((e) =>
      endpoint(typeof e === "string" ? { ip: e, ready: true } : e, options.namespace ?? "ns")
    ),
  };
}

/** Pod `name` at `ip` as the EndpointSlice controller lists it: ready and serving alike (ready
 * unless `ready` is false), not terminating. */
export function podEndpoint(pod: { name: string; ip: string; ready?: boolean }): EndpointFixture {
  const ready = pod.ready ?? true;
  return { ip: pod.ip, pod: pod.name, ready, serving: ready, terminating: false };
}

/** A slice listing `pods` as the EndpointSlice controller does (see {@link podEndpoint}). */
export function podSlice(
  pods: readonly { name: string; ip: string; ready?: boolean }[],
  options: SliceOptions = {},
): V1EndpointSlice {
  return slice(pods.map(podEndpoint), options);
}

/** A slice of `service` (named `<service>-abc` unless `name` is given) at `rv`, with `ips` ready. */
export function sliceFor(
  service: string,
  ips: string[],
  rv: string,
  name = `${service}-abc`,
): V1EndpointSlice {
  return slice(ips, { service, rv, name });
}

function endpoint(e: EndpointFixture, namespace: string): V1Endpoint {
  const conditions: V1Endpoint["conditions"] = {};
  if (e.ready !== undefined) conditions.ready = e.ready;
  if (e.serving !== undefined) conditions.serving = e.serving;
  if (e.terminating !== undefined) conditions.terminating = e.terminating;
  const out: V1Endpoint = { addresses: [e.ip], conditions };
  if (e.nodeName !== undefined) out.nodeName = e.nodeName;
  if (e.zone !== undefined) out.zone = e.zone;
  if (e.pod !== undefined) out.targetRef = { kind: "Pod", name: e.pod, namespace };
  return out;
}
