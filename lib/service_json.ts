/**
 * The bodies of `GET /v1/services/{namespace}/{name}` (JSON, or `?format=text` targets), built
 * from per-endpoint JSON fragments: an endpoint is serialized once for as long as it is
 * unchanged (lib/merged_service.ts keeps the objects of endpoints a change did not touch), so the
 * body after a change to one slice of a big Service costs the slice's endpoints plus one join,
 * not the whole Service again. The text is exactly `JSON.stringify` of {@linkcode serviceJson}.
 *
 * @module
 */
import type { EndpointView, PortView } from "./endpoints.ts";
import { filterEndpoints, type Query, targets } from "./query.ts";
import type { ServiceView } from "./service_view.ts";
import { isoTime } from "./iso_time.ts";

/** An endpoint's JSON text, for as long as the endpoint object lives. */
const fragments = new WeakMap<EndpointView, string>();

/** The JSON body of a view under a query: the text of {@linkcode serviceJson}. */
export function serviceBody(view: ServiceView, q: Query): string {
  const endpoints = filterEndpoints(view.endpoints, q);
  const parts: string[] = new Array(endpoints.length);
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[i]!;
    let text = fragments.get(e);
    if (text === undefined) fragments.set(e, text = JSON.stringify(endpointJson(e)));
    parts[i] = text;
  }
  const head = JSON.stringify({
    namespace: view.namespace,
    name: view.name,
    index: view.index,
    lastUpdated: isoTime(view.changedAt),
    ports: portsOf(view),
  });
  const tail = q.port === undefined
    ? ""
    : `,"targets":${JSON.stringify(targets(endpoints, q.port))}`;
  return `${head.slice(0, -1)},"endpoints":[${parts.join(",")}]${tail}}`;
}

/** The body of a view under a query as an object (what {@linkcode serviceBody} writes). */
export function serviceJson(view: ServiceView, q: Query): Record<string, unknown> {
  const endpoints = filterEndpoints(view.endpoints, q);
  const out: Record<string, unknown> = {
    namespace: view.namespace,
    name: view.name,
    index: view.index,
    lastUpdated: isoTime(view.changedAt),
    ports: portsOf(view),
    endpoints: endpoints.map(endpointJson),
  };
  if (q.port !== undefined) out.targets = targets(endpoints, q.port);
  return out;
}

/** The `?format=text` body: one `ip:port` per line. */
export function textBody(view: ServiceView, q: Query): string {
  const lines = targets(filterEndpoints(view.endpoints, q), q.port);
  return lines.length ? lines.join("\n") + "\n" : "";
}

/** Every port of the Service, once per name and number. */
function portsOf(view: ServiceView): PortView[] {
  const ports = new Map<string, PortView>();
  let last: readonly PortView[] | undefined;
  for (const e of view.endpoints) {
    // The endpoints of one slice share its ports array: look at each array once in a row.
    if (e.ports === last) continue;
    last = e.ports;
    for (const p of e.ports) ports.set(`${p.name}/${p.port}`, p);
  }
  return [...ports.values()];
}

function endpointJson(e: EndpointView): Record<string, unknown> {
  return {
    addresses: e.addresses,
    addressType: e.addressType,
    ready: e.ready,
    serving: e.serving,
    terminating: e.terminating,
    nodeName: e.nodeName ?? null,
    zone: e.zone ?? null,
    hostname: e.hostname ?? null,
    targetRef: e.targetRef ?? null,
    hints: e.hints ?? null,
    ports: e.ports,
  };
}
