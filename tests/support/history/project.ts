/**
 * Projections for the history checker: a sidecar answer and a true state are both reduced to
 * one compact, canonical, readable string per route (`/endpoints`, `/v1/services/{ns}/{name}`
 * with `state=all`, `/v1/services`, an SSE event), so that "this answer equals the truth at
 * resourceVersion R" is a string comparison and a failure report can print both sides as they
 * are. The v1 shape of the truth is made by lib/endpoints.ts' `renderV1Endpoints`.
 *
 * @module
 */
import { type EndpointView, renderV1Endpoints } from "../../../lib/endpoints.ts";

/** The projection of "this Service is not there" (404, or an SSE `removed`). */
export const ABSENT = "(absent)";

interface EndpointLike {
  addresses: string[];
  addressType?: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  nodeName?: string | null;
  ports?: { name?: string; port?: number; protocol?: string }[];
}

function token(e: EndpointLike): string {
  const flags = `${e.ready ? "R" : "-"}${e.serving ? "S" : "-"}${e.terminating ? "T" : "-"}`;
  const family = e.addressType && e.addressType !== "IPv4" ? `(${e.addressType})` : "";
  const ports = (e.ports ?? []).map((p) => `${p.name ?? ""}:${p.port}/${p.protocol}`).join(",");
  return `${e.addresses.join("+")}${family}/${flags}/${e.nodeName ?? ""}/${ports}`;
}

/** The endpoints of `/v1/services/{ns}/{name}?state=all` or of a true state. */
export function projectEndpoints(endpoints: readonly EndpointLike[]): string {
  return "[" + endpoints.map(token).sort().join(" ") + "]";
}

/** The subsets of `/endpoints` (v1 shape): per port set, ready and not-ready IPs with Pods. */
export function projectSubsets(subsets: unknown): string {
  if (subsets === null) return "{}"; // no endpoint: null, as the Go service sent it
  if (!Array.isArray(subsets)) return `(bad subsets ${JSON.stringify(subsets)})`;
  type Addr = { ip: string; targetRef?: { name?: string } };
  const addr = (list: Addr[] | undefined) =>
    (list ?? []).map((a) => `${a.ip}=${a.targetRef?.name ?? ""}`).sort().join(",");
  return subsets.map((s: { addresses?: Addr[]; notReadyAddresses?: Addr[]; ports?: [] }) => {
    const ports = (s.ports ?? []).map((p: { name?: string; port?: number }) =>
      `${p.name}:${p.port}`
    );
    return `{${ports.join(",")} ready ${addr(s.addresses)} notReady ${addr(s.notReadyAddresses)}}`;
  }).sort().join(" ") || "{}";
}

/** The v1 subsets of a true state, rendered by the sidecar's own renderer. */
export function projectTrueSubsets(
  key: { namespace: string; name: string },
  endpoints: EndpointView[] | undefined,
): string {
  return projectSubsets(
    renderV1Endpoints({ ...key, resourceVersion: "" }, endpoints ?? []).subsets,
  );
}

/** Counts of one Service as `/v1/services` lists it. */
export function countsOf(endpoints: readonly EndpointLike[]): string {
  const n = (f: (e: EndpointLike) => boolean) => endpoints.filter(f).length;
  return `${n((e) => e.ready)}/${n((e) => e.serving)}/${
    n((e) => e.terminating)
  }/${endpoints.length}`;
}

/** The Services of one namespace as `/v1/services` lists them: `name:ready/serving/term/total`. */
export function projectServiceList(entries: { name: string; counts: string }[]): string {
  return entries.map((e) => `${e.name}:${e.counts}`).sort().join(" ") || "(none)";
}

/** Projects an answer body; a parse failure becomes a projection no truth can equal. */
export function projectAnswer(
  kind: "endpoints" | "service" | "services" | "sse",
  answer: { status: number; body: string; event?: string },
  namespace: string,
): string {
  if (answer.status === 404 || answer.event === "removed") return ABSENT;
  try {
    const j = JSON.parse(answer.body);
    switch (kind) {
      case "endpoints":
        return projectSubsets(j.subsets);
      case "service":
      case "sse":
        return projectEndpoints(j.endpoints);
      case "services":
        return projectServiceList(
          (j.services as { namespace: string; name: string; endpoints: Record<string, number> }[])
            .filter((s) => s.namespace === namespace)
            .map((s) => ({
              name: s.name,
              counts:
                `${s.endpoints.ready}/${s.endpoints.serving}/${s.endpoints.terminating}/${s.endpoints.total}`,
            })),
        );
    }
  } catch (e) {
    return `(unreadable body: ${String(e).slice(0, 80)}: ${answer.body.slice(0, 120)})`;
  }
}
