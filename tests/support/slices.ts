/**
 * EndpointSlice fixtures for the unit tests: one slice of a Service, ready IPv4 endpoints on
 * port 80, as the EndpointSlice controller would label it.
 *
 * @module
 */
import type { V1EndpointSlice } from "@kubernetes/client-node";

/** A slice of `service` (named `<service>-abc` unless `name` is given) at `rv`, with `ips` ready. */
export function sliceFor(
  service: string,
  ips: string[],
  rv: string,
  name = `${service}-abc`,
): V1EndpointSlice {
  return {
    addressType: "IPv4",
    metadata: {
      name,
      resourceVersion: rv,
      labels: { "kubernetes.io/service-name": service },
    },
    ports: [{ name: "http", port: 80, protocol: "TCP" }],
    endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
  };
}
