/**
 * The bodies of `GET /v1/services/{namespace}/{name}` (JSON, or `?format=text` targets), built
 * from per-endpoint JSON fragments: an endpoint is serialized once for as long as it is
 * unchanged (lib/merged_service.ts keeps the objects of endpoints a change did not touch), so the
 * body after a change to one slice of a big Service costs the slice's endpoints plus one join,
 * not the whole Service again. The text is exactly `JSON.stringify` of {@linkcode serviceJson}.
 * With this Pod's marks (lib/self_view.ts), the body says its state in the Service (`self`, after
 * `lastUpdated`) and its endpoints carry `"self": true` (last); a body without marks (the view
 * without this Pod that `?exclude=self` serves) has neither, so it does not change when only
 * this Pod does.
 *
 * @module
 */
import type { EndpointView, PortView } from "./endpoints.ts";
import { filterEndpoints, type Query, targets } from "./query.ts";
import type { ServiceView } from "./service_view.ts";
import { isoTime } from "./iso_time.ts";
import type { SelfState } from "./self.ts";

/** This Pod in a view: its state and its endpoints (lib/self_view.ts's `SelfInfo`). */
export interface SelfMarks {
  readonly state: SelfState;
  readonly endpoints: ReadonlySet<EndpointView>;
}

/** An endpoint's JSON text, for as long as the endpoint object lives. */
const fragments = new WeakMap<EndpointView, string>();

/** The JSON body of a view under a query: the text of {@linkcode serviceJson}. */
export function serviceBody(view: ServiceView, q: Query, self?: SelfMarks): string {
  const endpoints = filterEndpoints(view.endpoints, q);
  const parts: string[] = new Array(endpoints.length);
  const own = self?.endpoints.size ? self.endpoints : undefined;
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[i]!;
    let text = fragments.get(e);
    if (text === undefined) fragments.set(e, text = JSON.stringify(endpointJson(e)));
    parts[i] = own?.has(e) ? `${text.slice(0, -1)},"self":true}` : text;
  }
  const head = JSON.stringify(headOf(view, self));
  const tail = q.port === undefined
    ? ""
    : `,"targets":${JSON.stringify(targets(endpoints, q.port))}`;
  return `${head.slice(0, -1)},"endpoints":[${parts.join(",")}]${tail}}`;
}

/** The body of a view under a query as an object (what {@linkcode serviceBody} writes). */
export function serviceJson(
  view: ServiceView,
  q: Query,
  self?: SelfMarks,
): Record<string, unknown> {
  const endpoints = filterEndpoints(view.endpoints, q);
  const out: Record<string, unknown> = {
    ...headOf(view, self),
    endpoints: endpoints.map((e) =>
      self?.endpoints.has(e) ? { ...endpointJson(e), self: true } : endpointJson(e)
    ),
  };
  if (q.port !== undefined) out.targets = targets(endpoints, q.port);
  return out;
}

/** The `?format=text` body: one `ip:port` per line. */
export function textBody(view: ServiceView, q: Query): string {
  const lines = targets(filterEndpoints(view.endpoints, q), q.port);
  return lines.length ? lines.join("\n") + "\n" : "";
}

/** The fields before `endpoints`; `self` only with marks. */
function headOf(view: ServiceView, self: SelfMarks | undefined): Record<string, unknown> {
  const head: Record<string, unknown> = {
    namespace: view.namespace,
    name: view.name,
    index: view.index,
    lastUpdated: isoTime(view.changedAt),
  };
  if (self) head.self = self.state;
  head.ports = portsOf(view);
  return head;
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
