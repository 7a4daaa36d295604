/**
 * Services of one large EndpointSlice each, for the fan-out tests: events of a known size, and a
 * change that flips which endpoint is not ready.
 *
 * @module
 */
import { createEndpointSlice, createService } from "./cluster/fixtures.ts";
import { kubeOk } from "./cluster/http.ts";
import type { Endpoint } from "./cluster/types.ts";

/** `size` endpoints of Service number `service`, one not ready (`round` picks which). */
export function bigEndpoints(size: number, service: number, round: number): Endpoint[] {
  return Array.from({ length: size }, (_, k) => ({
    addresses: [`10.${100 + service}.${k >> 8}.${k & 255}`],
    conditions: { ready: k !== round % size },
  }));
}

/** Services `names` without a selector, each with one slice of `size` endpoints (round 0). */
export async function createBigServices(ns: string, names: string[], size: number) {
  for (const [i, name] of names.entries()) {
    await createService(ns, name, { selector: null });
    await createEndpointSlice(ns, {
      metadata: { name, labels: { "kubernetes.io/service-name": name } },
      addressType: "IPv4",
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      endpoints: bigEndpoints(size, i, 0),
    });
  }
}

/** Replaces the endpoints of Service number `service` (`names[service]`) with `round`'s. */
export async function patchBigService(
  ns: string,
  names: string[],
  size: number,
  service: number,
  round: number,
) {
  await kubeOk(
    "PATCH",
    `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/${names[service]}`,
    { body: { endpoints: bigEndpoints(size, service, round) } },
  );
}
