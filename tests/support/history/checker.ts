/**
 * The history checker, in the spirit of a linearizability checker: given every answer the
 * clients logged and the truth's timelines, it checks that each answer equals the truth at some
 * resourceVersion no older than the one the client's previous answer matched, that the index
 * never goes backwards and is never below the state it is served with, that one ETag never
 * labels two bodies, that the last good view is served (never an error) through faults, that every view
 * equals the truth within a deadline after each fault and at the end, and that every SSE stream
 * ends at the final state (a removed Service announced); with resume.ts, that no resume of an
 * all-Services stream skips a change; with staleness.ts, that the last-updated headers are
 * honest through black holes and fresh again after; and that each sidecar's heap stayed within
 * a bound of its start. It returns the violations, the first of each assertion with the slice
 * of history around it, and the figures of the run.
 *
 * @module
 */
import type { Answer, AnswerKind } from "./recorder.ts";
import { ABSENT, projectAnswer } from "./project.ts";
import { isFresh, matchFrom, type Point, pointAt, timelineFor, truthAround } from "./timeline.ts";
import type { PickPoint, TruthPoint } from "./truth.ts";
import type { Mode } from "./sidecars.ts";
import { linesAround, type SidecarLine } from "./logs.ts";
import { checkResumes } from "./resume.ts";
import { checkStaleness, type StalenessFigures } from "./staleness.ts";

/** What the checker reads of the truth (the live truth or a loaded dump). */
export interface TruthView {
  /** The resourceVersion of the first lists. */
  startRv: number;
  /** The timeline of one Service. */
  timeline(namespace: string, name: string): TruthPoint[];
  /** Every Service key of a namespace that ever had a slice. */
  services(namespace: string): string[];
  /** Whether the selector picked a Service (it exists and carries the label), over time. */
  picked(namespace: string, name: string): PickPoint[];
}

/** A client of the run, as the checker needs to read its answers. */
export interface ClientSpec {
  /** Unique name, as in {@linkcode Answer.client}. */
  name: string;
  /** The sidecar it asks (ETags are compared per sidecar). */
  sidecar: string;
  /** How that sidecar picks Services: by name, every Service or a label selector (in the last
   * two a Service can leave). */
  mode: Mode;
  /** The namespace of its subject (its list's, for "services"). */
  namespace: string;
  /** For a subject of "*": every namespace it covers. */
  namespaces?: string[];
  /** What it asks for. */
  kind: AnswerKind;
  /** The Service (`namespace/name`), or "*" for every Service of the namespace. */
  subject: string;
  /** Whether its answers arrive on their own (pollers, blocking queries) rather than on change. */
  polls: boolean;
}

/** One fault as it happened, with the deadline the views had to meet after it. */
export interface FaultRecord {
  /** e.g. "blackhole", "outage 34.2 s". */
  label: string;
  /** When it started (ms, performance.now()). */
  start: number;
  /** When the API server was reachable again (= start for a cut or a black hole). */
  end: number;
  /** The truth's resourceVersion once a change made after the fault was seen. */
  refRv: number;
  /** When that change was seen. */
  refAt: number;
  /** Every poller must show a state at refRv or newer by then. */
  deadline: number;
  /** Recovery is measured from here (a black hole's start, the API server's return). */
  from: number;
}

/** One violated assertion. */
export interface Violation {
  /** The assertion's short name. */
  assertion: string;
  /** When (ms, performance.now()). */
  t: number;
  /** Which client. */
  client: string;
  /** The sidecar it asked, whose log explains it. */
  sidecar?: string;
  /** The span of that log to show (ms); default the minute before `t`. */
  logSpan?: [number, number];
  /** What was wrong, one line. */
  detail: string;
  /** The slice of history around it, a few lines. */
  context: string[];
}

/** What a run checked. */
export interface Figures {
  answers: number;
  etags: number;
  sseEvents: number;
  faults: number;
  truthStates: number;
  /** Longest time from a fault's start (black hole) or end (API back) to a fresh view, per
   * fault; Infinity when some client never showed it within the run. */
  recoveries: { label: string; ms: number | undefined }[];
  /** Resumes of all-Services streams checked for skipped changes. */
  resumes: number;
  staleness: StalenessFigures;
}

/** A sidecar's JS heap in use at the start of the faults and after the run (bytes). */
export interface HeapReading {
  sidecar: string;
  before: number;
  after: number;
}

/** How much a sidecar's reachable heap may grow over a run: its caches are bounded by the
 * Services (a few dozen) and the SSE tombstones; what grows past this is kept per client or per
 * request (the clients come and go by the hundred; 0.8-0.9 MB growth seen per run). */
export const HEAP_GROWTH_BOUND_BYTES = 4_000_000;

/** The checker's input. */
export interface History {
  answers: Answer[];
  clients: ClientSpec[];
  truth: TruthView;
  faults: FaultRecord[];
  /** The final state: its resourceVersion and when it was seen; views must equal it after. */
  final: { rv: number; at: number; deadline: number };
  /** performance.now() at the start of the run, for printing times. */
  t0: number;
  /** The sidecars' log lines, shown beside each violation. */
  logs?: SidecarLine[];
  /** The sidecars' heap readings. */
  heap?: HeapReading[];
}

/** Checks a history; returns every violation (first of each kind with context) and figures. */
export function checkHistory(h: History): { violations: Violation[]; figures: Figures } {
  const violations: Violation[] = [];
  const byClient = new Map<string, Answer[]>();
  for (const a of h.answers) {
    const list = byClient.get(a.client);
    if (list) list.push(a);
    else byClient.set(a.client, [a]);
  }
  const recoveries = h.faults.map((f) => ({ label: f.label, ms: undefined as number | undefined }));
  const etags = new Map<string, { body: string; answer: Answer }>();
  const at = (t: number) => `${((t - h.t0) / 1000).toFixed(2)}s`;
  const line = (a: Answer, p: string) =>
    `  ${at(a.t)} ${a.event ?? a.status} index=${a.index ?? "-"} etag=${a.etag ?? "-"} ${p}`;
  const timelines = new Map<string, Point[]>();
  for (const spec of h.clients) {
    const answers = byClient.get(spec.name) ?? [];
    if (!answers.length) {
      // No answer at all is the worst view: nothing of it can be checked in order, so say so,
      // and a poller still owes every recovery.
      violations.push({
        assertion: "client-answered",
        t: h.final.deadline,
        client: spec.name,
        sidecar: spec.sidecar,
        detail: `no answer in the whole run (${spec.kind} of ${spec.subject})`,
        context: [],
      });
      const tl = timelineFor(h.truth, spec, spec.subject);
      if (spec.kind !== "sse") {
        checkRecovery(h, { spec, group: [], tl, violations, recoveries, at });
      }
    }
    const groups = new Map<string, Answer[]>();
    for (const a of answers) {
      if (a.event === "(resumed)") continue;
      const subject = spec.kind === "sse" ? a.subject : spec.subject;
      const g = groups.get(subject);
      if (g) g.push(a);
      else groups.set(subject, [a]);
    }
    for (const [subject, group] of groups) {
      const kind = spec.kind === "sse" ? "service" : spec.kind;
      const key = `${spec.namespace}|${spec.mode}|${kind}|${subject}`;
      let tl = timelines.get(key);
      if (!tl) timelines.set(key, tl = timelineFor(h.truth, spec, subject));
      checkSequence(h, { spec, subject, group, tl, violations, etags, line, at });
      checkRecovery(h, { spec, group, tl, violations, recoveries, at });
    }
    if (spec.kind === "sse") checkSseEnd(h, { spec, groups, violations, at });
  }
  const resumes = checkResumes(h, byClient, violations);
  const staleness = checkStaleness(h, byClient, violations);
  for (const r of h.heap ?? []) {
    if (r.after - r.before <= HEAP_GROWTH_BOUND_BYTES) continue;
    violations.push({
      assertion: "heap-within-bound",
      t: h.final.deadline,
      client: r.sidecar,
      detail: `the ${r.sidecar} sidecar's JS heap in use went from ${mb(r.before)} to ` +
        `${mb(r.after)} MB over the run (bound: +${mb(HEAP_GROWTH_BOUND_BYTES)} MB)`,
      context: [],
    });
  }
  return {
    violations,
    figures: {
      answers: h.answers.length,
      etags: new Set([...etags.keys()]).size,
      sseEvents: h.answers.filter((a) => a.kind === "sse" && a.event !== undefined).length,
      faults: h.faults.length,
      truthStates: [...timelines.values()].reduce((n, t) => n + t.length, 0),
      recoveries,
      resumes,
      staleness,
    },
  };
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

function checkSequence(
  h: History,
  o: {
    spec: ClientSpec;
    subject: string;
    group: Answer[];
    tl: Point[];
    violations: Violation[];
    etags: Map<string, { body: string; answer: Answer }>;
    line: (a: Answer, p: string) => string;
    at: (t: number) => string;
  },
): void {
  const { spec, tl } = o;
  let floor = h.truth.startRv;
  let lastIndex = -Infinity;
  const seen = new Set<string>();
  const report = (assertion: string, a: Answer, i: number, detail: string, extra: string[]) => {
    if (seen.has(assertion)) return;
    seen.add(assertion);
    const before = o.group.slice(Math.max(0, i - 4), i + 1).map((b) =>
      o.line(
        b,
        b.status === 200 || b.status === 404
          ? projectAnswer(spec.kind, b, spec.namespace)
          : b.body.slice(0, 100),
      )
    );
    o.violations.push({
      assertion,
      t: a.t,
      client: `${spec.name} (${o.subject})`,
      sidecar: spec.sidecar,
      detail,
      context: [`  answers of ${spec.name} up to it:`, ...before, ...extra],
    });
  };
  o.group.forEach((a, i) => {
    if (a.event === "(stream ended)") {
      report("sse-stream-ended", a, i, "the SSE stream ended while the sidecar ran", []);
      return;
    }
    if (a.status !== 200 && !(a.status === 404 && spec.mode !== "names")) {
      const fault = h.faults.find((f) => a.t >= f.start && a.t <= f.deadline);
      report(
        "last-good-view-served",
        a,
        i,
        `answered ${a.status} ${a.body.slice(0, 160)}` +
          (fault ? ` during fault "${fault.label}"` : " (no fault under way)"),
        [],
      );
      return;
    }
    const p = projectAnswer(spec.kind, a, spec.namespace);
    if (a.etag) {
      const key = `${spec.sidecar}|${spec.kind}|${a.etag}`;
      const prev = o.etags.get(key);
      if (prev && prev.body !== a.body) {
        report("one-etag-one-body", a, i, `ETag ${a.etag} labelled two bodies`, [
          `  first at ${o.at(prev.answer.t)}: ${prev.body.slice(0, 300)}`,
          `  then  at ${o.at(a.t)}: ${a.body.slice(0, 300)}`,
        ]);
      } else if (!prev) o.etags.set(key, { body: a.body, answer: a });
    }
    if (a.index !== undefined) {
      if (a.index < lastIndex) {
        report(
          "index-never-goes-back",
          a,
          i,
          `index went from ${lastIndex} back to ${a.index}`,
          [],
        );
      }
      lastIndex = Math.max(lastIndex, a.index);
      if (spec.kind !== "services" && a.index >= h.truth.startRv) {
        const truthAt = pointAt(tl, a.index);
        // A change that arrives after another namespace's (or watch's) newer one is given that
        // newer index (docs/api.md), so the state may be the truth at an earlier resourceVersion
        // than its index; never at a later one.
        const since = matchFrom(tl, p, floor);
        if (truthAt && !truthAt.accept.has(p) && !(since !== undefined && since <= a.index)) {
          report(
            "index-names-its-state",
            a,
            i,
            `served with index ${a.index}, but the truth at ${a.index} is ${truthAt.show}` +
              (since === undefined ? "" : `; the state shown begins only at ${since}`),
            truthAround(tl, a.index),
          );
        }
      }
    }
    const r = matchFrom(tl, p, floor);
    if (r === undefined) {
      const older = matchFrom(tl, p, 0);
      report(
        "true-state-in-order",
        a,
        i,
        older === undefined
          ? `not the truth at any resourceVersion: ${p}`
          : `went back in time: not the truth at ${floor} (what the client was last shown) ` +
            `or later; it was at ${older}: ${p}`,
        truthAround(tl, older ?? floor),
      );
      return;
    }
    floor = r;
  });
}

function checkRecovery(
  h: History,
  o: {
    spec: ClientSpec;
    group: Answer[];
    tl: Point[];
    violations: Violation[];
    recoveries: { label: string; ms: number | undefined }[];
    at: (t: number) => string;
  },
): void {
  if (!o.spec.polls) return;
  const goals = [
    ...h.faults.map((f, i) => ({ ...f, i })),
    {
      label: "final state",
      refRv: h.final.rv,
      refAt: h.final.at,
      deadline: h.final.deadline,
      from: h.final.at,
      i: -1,
    },
  ];
  for (const g of goals) {
    const fresh = o.group.find((a) =>
      a.t >= g.refAt && (a.status === 200 || a.status === 404) &&
      isFresh(o.tl, projectAnswer(o.spec.kind, a, o.spec.namespace), g.refRv)
    );
    if (g.i >= 0) {
      // A client that never showed the state counts as an endless recovery.
      const ms = fresh ? fresh.t - g.from : Infinity;
      const r = o.recoveries[g.i]!;
      r.ms = Math.max(r.ms ?? 0, ms);
    }
    if (!fresh || fresh.t > g.deadline) {
      const last = o.group.filter((a) => a.t <= g.deadline).at(-1);
      o.violations.push({
        assertion: "recovers-in-time",
        t: g.deadline,
        client: o.spec.name,
        sidecar: o.spec.sidecar,
        detail: `after "${g.label}" the view did not equal the truth at ${g.refRv} or later by ` +
          `${o.at(g.deadline)}` + (fresh ? ` (it did at ${o.at(fresh.t)})` : " (never did)"),
        context: [
          `  last answer by then: ${
            last
              ? `${o.at(last.t)} ${last.status} index=${last.index} ${
                projectAnswer(o.spec.kind, last, o.spec.namespace)
              }`
              : "none"
          }`,
          ...truthAround(o.tl, g.refRv),
        ],
      });
    }
  }
  // The last answer of the run must be the final state.
  const last = o.group.at(-1);
  if (last && last.t > h.final.deadline) {
    const p = projectAnswer(o.spec.kind, last, o.spec.namespace);
    if (!isFresh(o.tl, p, h.final.rv)) {
      o.violations.push({
        assertion: "ends-at-final-state",
        t: last.t,
        client: o.spec.name,
        sidecar: o.spec.sidecar,
        detail: `the last answer is not the final state: ${p}`,
        context: truthAround(o.tl, h.final.rv),
      });
    }
  }
}

function checkSseEnd(
  h: History,
  o: {
    spec: ClientSpec;
    groups: Map<string, Answer[]>;
    violations: Violation[];
    at: (t: number) => string;
  },
): void {
  const subjects = o.spec.subject === "*"
    ? new Set([
      ...(o.spec.namespaces ?? [o.spec.namespace]).flatMap((ns) => h.truth.services(ns)),
      ...o.groups.keys(),
    ])
    : new Set([o.spec.subject]);
  for (const subject of subjects) {
    if (!subject.includes("/")) continue;
    const tl = timelineFor(h.truth, o.spec, subject);
    const finalPoint = tl.at(-1)!;
    const events = (o.groups.get(subject) ?? []).filter((a) => a.event !== "(stream ended)");
    const last = events.at(-1);
    const p = last ? projectAnswer("sse", last, o.spec.namespace) : ABSENT;
    if (!finalPoint.accept.has(p)) {
      o.violations.push({
        assertion: "sse-ends-at-final-state",
        t: last?.t ?? h.final.deadline,
        client: `${o.spec.name} (${subject})`,
        sidecar: o.spec.sidecar,
        // Why nothing came after the last event: the log from then to the end.
        logSpan: [last?.t ?? h.final.at, h.final.deadline],
        detail:
          `the stream's last event for ${subject} is ${last ? `${last.event} ${p}` : "none"}, ` +
          `the final truth is ${finalPoint.show}`,
        context: events.slice(-4).map((a) =>
          `  ${o.at(a.t)} ${a.event} id=${a.index ?? "-"} ${
            projectAnswer("sse", a, o.spec.namespace)
          }`
        ),
      });
    }
  }
}

/** The failure report: seeds, the first violation of each assertion with its history and its
 * sidecar's log lines before it (when `logs` are given), counts. */
export function formatViolations(
  violations: Violation[],
  seeds: number[],
  o: { t0: number; logs?: SidecarLine[] },
): string {
  const t0 = o.t0;
  const first = new Map<string, Violation>();
  const counts = new Map<string, number>();
  for (const v of [...violations].sort((a, b) => a.t - b.t)) {
    counts.set(v.assertion, (counts.get(v.assertion) ?? 0) + 1);
    if (!first.has(v.assertion)) first.set(v.assertion, v);
  }
  const out = [
    `history checker: ${violations.length} violation(s); replay with KPD_HISTORY_SEED=${
      seeds.join(",")
    }`,
    `counts: ${[...counts].map(([k, n]) => `${k}=${n}`).join(" ")}`,
  ];
  for (const v of first.values()) {
    out.push(
      `[${v.assertion}] at ${((v.t - t0) / 1000).toFixed(2)}s, ${v.client}: ${v.detail}`,
      ...v.context,
      ...(o.logs && v.sidecar
        ? linesAround(o.logs, { sidecar: v.sidecar, t: v.t, t0, span: v.logSpan })
        : []),
    );
  }
  return out.join("\n");
}
