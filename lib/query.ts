/**
 * The filters of `GET /v1/services/{namespace}/{name}`: state, address family, port, zone and
 * node preference, and the output format. Parsing rejects unknown parameters and values with a
 * message naming the parameter; applying is a pure function of a view.
 *
 * @module
 */
import type { EndpointView, PortView } from "./endpoints.ts";

/** A parsed, valid query. */
export interface Query {
  state: "ready" | "serving" | "all";
  /** With state=ready and no ready endpoint, serve the serving (terminating) ones instead. */
  fallback: boolean;
  family?: "IPv4" | "IPv6";
  port?: string;
  zone?: string;
  zonal?: "pin" | "prefer";
  node?: string;
  nodeMode?: "pin" | "prefer";
  format: "json" | "text";
  /** `?exclude=self`: leave this Pod's endpoints out (the view without this Pod). */
  excludeSelf?: true;
  /** Blocking query: wait while the index is still this. */
  index?: number;
  /** Blocking query: wait at most this long (ms). */
  waitMs?: number;
}

/** Longest a blocking query may wait, as Consul caps it. */
export const MAX_WAIT_MS = 10 * 60_000;
/** Wait of a blocking query that gives `index` without `wait`. */
export const DEFAULT_WAIT_MS = 5 * 60_000;

/** A bad request: the message names the parameter and what it accepts. */
export class QueryError extends Error {
  /** Makes the error. */
  constructor(message: string) {
    super(message);
    this.name = "QueryError";
  }
}

const KNOWN = new Set([
  "state",
  "fallback",
  "family",
  "port",
  "zone",
  "zonal",
  "node",
  "nodeName",
  "format",
  "exclude",
  "index",
  "wait",
]);

function oneOf<T extends string>(
  params: URLSearchParams,
  name: string,
  values: readonly T[],
): T | undefined {
  const v = params.get(name);
  if (v === null) return undefined;
  const hit = values.find((x) => x.toLowerCase() === v.toLowerCase());
  if (!hit) {
    throw new QueryError(
      `Bad ?${name}=${JSON.stringify(v).slice(1, -1)}: use one of ${values.join(", ")}`,
    );
  }
  return hit;
}

/** Parses a duration: `30s`, `500ms`, `5m` or plain seconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? "s"]!;
  return n * unit;
}

/** Parses and validates a query string; `self` gives the sidecar's own node and zone. */
export function parseQuery(
  params: URLSearchParams,
  self: { nodeName?: string; zone?: string } = {},
): Query {
  for (const k of params.keys()) {
    if (!KNOWN.has(k)) {
      throw new QueryError(`Unknown parameter ?${k}: known are ${[...KNOWN].join(", ")}`);
    }
  }
  const q: Query = {
    state: oneOf(params, "state", ["ready", "serving", "all"] as const) ?? "ready",
    fallback: oneOf(params, "fallback", ["serving", "none"] as const) === "serving",
    family: oneOf(params, "family", ["IPv4", "IPv6"] as const),
    format: oneOf(params, "format", ["json", "text"] as const) ?? "json",
    zonal: oneOf(params, "zonal", ["pin", "prefer"] as const),
    nodeMode: oneOf(params, "node", ["pin", "prefer"] as const),
  };
  if (oneOf(params, "exclude", ["self"] as const)) q.excludeSelf = true;
  const port = params.get("port");
  if (port !== null) {
    if (!/^([a-z0-9]([-a-z0-9]*[a-z0-9])?|\d{1,5})$/.test(port)) {
      throw new QueryError(`Bad ?port=${port}: use a port name or number`);
    }
    q.port = port;
  }
  const zone = params.get("zone") ?? undefined;
  if (zone !== undefined && !q.zonal) q.zonal = "pin";
  if (q.zonal) {
    q.zone = zone ?? self.zone;
    if (!q.zone) {
      throw new QueryError(
        "?zonal needs a zone: add ?zone=<zone> or start the sidecar with --zone",
      );
    }
  }
  if (q.nodeMode) {
    q.node = params.get("nodeName") ?? self.nodeName;
    if (!q.node) {
      throw new QueryError(
        "?node needs a node: add ?nodeName=<node> or start the sidecar with --node-name",
      );
    }
  }
  const index = params.get("index");
  if (index !== null) {
    if (!/^\d{1,15}$/.test(index)) {
      throw new QueryError(`Bad ?index=${index}: use the X-Discovery-Index of an earlier answer`);
    }
    q.index = Number(index);
    q.waitMs = DEFAULT_WAIT_MS;
  }
  const wait = params.get("wait");
  if (wait !== null) {
    const ms = parseDuration(wait);
    if (ms === undefined) {
      throw new QueryError(`Bad ?wait=${wait}: use a duration such as 30s, 500ms or 5m`);
    }
    if (ms > MAX_WAIT_MS) {
      throw new QueryError(`Bad ?wait=${wait}: at most 10m`);
    }
    if (q.index === undefined) throw new QueryError("?wait needs ?index=<X-Discovery-Index>");
    q.waitMs = ms;
  }
  return q;
}

/** Applies state, family, zone and node filters, in that order. A filter that is not asked for
 * makes no copy: on a big Service each pass is a walk over every endpoint. */
export function filterEndpoints(
  endpoints: readonly EndpointView[],
  q: Query,
): readonly EndpointView[] {
  let out = q.family ? endpoints.filter((e) => e.addressType === q.family) : endpoints;
  if (q.state === "ready") {
    const ready = out.filter((e) => e.ready);
    out = ready.length || !q.fallback ? ready : out.filter((e) => e.serving);
  } else if (q.state === "serving") {
    out = out.filter((e) => e.serving);
  }
  if (q.zonal && q.zone) {
    const inZone = out.filter((e) => e.zone === q.zone);
    out = inZone.length || q.zonal === "pin" ? inZone : out;
  }
  if (q.nodeMode && q.node) {
    const onNode = out.filter((e) => e.nodeName === q.node);
    out = onNode.length || q.nodeMode === "pin" ? onNode : out;
  }
  return out;
}

/** The port of an endpoint that `port` (a name or number) names. */
export function pickPort(ports: readonly PortView[], port: string): PortView | undefined {
  return ports.find((p) => p.name === port || String(p.port) === port);
}

/** `ip:port` (or `[ipv6]:port`) for each address of each endpoint that has the port. */
export function targets(endpoints: readonly EndpointView[], port: string | undefined): string[] {
  const out: string[] = [];
  for (const e of endpoints) {
    const p = port === undefined
      ? (e.ports.length === 1 ? e.ports[0] : undefined)
      : pickPort(e.ports, port);
    if (!p) continue;
    for (const a of e.addresses) out.push(a.includes(":") ? `[${a}]:${p.port}` : `${a}:${p.port}`);
  }
  return out;
}
