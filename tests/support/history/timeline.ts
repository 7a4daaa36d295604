/**
 * The truth as one client sees it: a Service's timeline (or a namespace's, for
 * `/v1/services`) turned into the projections a correct answer may have at each
 * resourceVersion, and the searches the checker makes in it: the first resourceVersion at or
 * after a floor where an answer was true, the state in force at an index, and the few points
 * around a resourceVersion for a report.
 *
 * @module
 */
import type { EndpointView } from "../../../lib/endpoints.ts";
import type { ClientSpec, TruthView } from "./checker.ts";
import {
  ABSENT,
  countsOf,
  projectEndpoints,
  projectServiceList,
  projectTrueSubsets,
} from "./project.ts";

/** One state of a client's timeline; it holds until the next point's resourceVersion. */
export interface Point {
  /** Where the state starts. */
  rv: number;
  /** The projections an answer may have in this state. */
  accept: Set<string>;
  /** The state, printed. */
  show: string;
  /** When the truth saw it (ms, performance.now()). */
  seenAt: number;
}

function serviceAccept(
  spec: ClientSpec,
  endpoints: EndpointView[] | undefined,
  key: { namespace: string; name: string },
): Set<string> {
  if (spec.kind === "endpoints") return new Set([projectTrueSubsets(key, endpoints)]);
  if (endpoints === undefined) {
    return spec.mode !== "names"
      ? new Set([ABSENT, projectEndpoints([])])
      : new Set([projectEndpoints([])]);
  }
  return new Set([projectEndpoints(endpoints)]);
}

/** The truth as one client's projections, oldest first; each point holds until the next. */
export function timelineFor(truth: TruthView, spec: ClientSpec, subject: string): Point[] {
  const mk = (rv: number, accept: Set<string>, seenAt = 0): Point => ({
    rv,
    accept,
    show: [...accept][0]!,
    seenAt,
  });
  if (spec.kind === "services") {
    const names = truth.services(spec.namespace);
    const lines = names.map((k) => servedLine(truth, spec, ...split(k)));
    const rvs = [...new Set(lines.flatMap((l) => l.map((p) => p.rv)))].sort((a, b) => a - b);
    return rvs.map((rv) => {
      const entries: { name: string; counts: string }[] = [];
      let seenAt = 0;
      names.forEach((k, i) => {
        const p = lines[i]!.filter((q) => q.rv <= rv).at(-1);
        if (p?.rv === rv) seenAt = Math.max(seenAt, p.seenAt);
        if (p?.endpoints) entries.push({ name: split(k)[1], counts: countsOf(p.endpoints) });
      });
      return mk(rv, new Set([projectServiceList(entries)]), seenAt);
    });
  }
  const [namespace, name] = split(subject);
  const points = servedLine(truth, spec, namespace, name);
  const out = points.map((p) =>
    mk(p.rv, serviceAccept(spec, p.endpoints, { namespace, name }), p.seenAt)
  );
  if (!points.length || points[0]!.rv > truth.startRv) {
    out.unshift(mk(0, serviceAccept(spec, undefined, { namespace, name })));
  }
  return out;
}

/** A Service's timeline as the client's sidecar serves it: in selector mode, endpoints only
 * while the selector picks the Service (the two timelines merged at every resourceVersion of
 * either). */
function servedLine(
  truth: TruthView,
  spec: ClientSpec,
  namespace: string,
  name: string,
): ServedPoint[] {
  const points = truth.timeline(namespace, name);
  if (spec.mode !== "selector") return points;
  const picks = truth.picked(namespace, name);
  const rvs = [...new Set([...points, ...picks].map((p) => p.rv))].sort((a, b) => a - b);
  const out: ServedPoint[] = [];
  for (const rv of rvs) {
    const p = points.filter((q) => q.rv <= rv).at(-1);
    const pick = picks.filter((q) => q.rv <= rv).at(-1);
    const endpoints = pick?.picked ? p?.endpoints : undefined;
    const last = out.at(-1);
    if (last && JSON.stringify(last.endpoints) === JSON.stringify(endpoints)) continue;
    const seenAt = Math.max(p?.rv === rv ? p.seenAt : 0, pick?.rv === rv ? pick.seenAt : 0);
    out.push({ rv, endpoints, seenAt });
  }
  return out;
}

interface ServedPoint {
  rv: number;
  endpoints: EndpointView[] | undefined;
  seenAt: number;
}

/** Splits `namespace/name`. */
export function split(key: string): [string, string] {
  const i = key.indexOf("/");
  return [key.slice(0, i), key.slice(i + 1)];
}

/** The smallest R >= floor at which the timeline shows `p`, or undefined. */
export function matchFrom(tl: Point[], p: string, floor: number): number | undefined {
  for (let i = 0; i < tl.length; i++) {
    const end = tl[i + 1]?.rv ?? Infinity;
    if (tl[i]!.accept.has(p) && end > floor) return Math.max(tl[i]!.rv, floor);
  }
  return undefined;
}

/** The point in force at resourceVersion rv. */
export function pointAt(tl: Point[], rv: number): Point | undefined {
  let found: Point | undefined;
  for (const p of tl) if (p.rv <= rv) found = p;
  return found;
}

/** The truth points around rv, printed, for a report. */
export function truthAround(tl: Point[], rv: number): string[] {
  const after = tl.findIndex((p) => p.rv > rv);
  const i = Math.max(0, (after < 0 ? tl.length : after) - 3);
  return tl.slice(i, i + 5).map((p) => `  truth rv=${p.rv} ${p.show}`);
}

/** Whether the answer p equals the truth at rv or later. */
export function isFresh(tl: Point[], p: string, rv: number): boolean {
  return matchFrom(tl, p, rv) !== undefined;
}
