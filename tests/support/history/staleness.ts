/**
 * The history checker's staleness checks, on `X-Discovery-Last-Updated` (the moment the view
 * was last known current) and `X-Discovery-Age-Seconds`. Honest: an answer that says it was
 * current at K shows the truth as it was a moment (the watch's delay) before K, or newer; within
 * 45 s of a black hole's start the moment may run on while the dead connection is not yet
 * noticed (the probe's bound), never longer, so a watch whose dead connection goes unnoticed
 * (e.g. vouched for by a probe over another connection) is caught. Fresh again: after the black
 * hole, every watch (a sidecar's view of one namespace) answers with a small age again, by a
 * deadline. The age agrees with the moment it is given with.
 *
 * @module
 */
import type { ClientSpec, History, Violation } from "./checker.ts";
import { projectAnswer } from "./project.ts";
import type { Answer } from "./recorder.ts";
import { isFresh, type Point, timelineFor, truthAround } from "./timeline.ts";

/** A dead connection is noticed within this of a black hole's start (the probe's bound). */
export const FROZEN_WITHIN_MS = 45_000;
/** Slack on that bound: a probe's own timer and a request in flight. */
const FROZEN_SLACK_MS = 3_000;
/** Outside black holes, a change reaches the sidecar's view within this of reaching the truth's
 * (both watch the same API server; the machine is shared, so not less). */
const NORMAL_LAG_MS = 5_000;
/** An age at most this counts as fresh. */
const FRESH_AGE_S = 5;
/** Every watch must be fresh again this long after a black hole's start. */
export const FRESH_AGAIN_MS = 75_000;

/** Figures of the staleness checks. */
export interface StalenessFigures {
  /** Answers whose honesty was checked. */
  checked: number;
  /** Per black hole, the longest time from its start until a watch was fresh again (ms;
   * Infinity when one never was). */
  freshAgain: { label: string; ms: number }[];
}

/** Runs the staleness checks over the pollers of Services (and /endpoints). */
export function checkStaleness(
  h: History,
  byClient: Map<string, Answer[]>,
  violations: Violation[],
): StalenessFigures {
  const at = (t: number) => `${((t - h.t0) / 1000).toFixed(2)}s`;
  const holes = h.faults.filter((f) => f.label === "blackhole");
  const figures: StalenessFigures = {
    checked: 0,
    freshAgain: holes.map((f) => ({ label: f.label, ms: 0 })),
  };
  const watches = new Map<string, Answer[]>();
  const reported = new Set<string>();
  for (const spec of h.clients) {
    if (!spec.polls || (spec.kind !== "service" && spec.kind !== "endpoints")) continue;
    const answers = (byClient.get(spec.name) ?? []).filter((a) =>
      a.status === 200 && a.knownAt !== undefined
    );
    const key = `${spec.sidecar} ${spec.subject.split("/")[0]}`;
    // A client with no such answer (a unit test's, or one that never answered: reported as
    // such) names no watch.
    if (answers.length) watches.set(key, [...(watches.get(key) ?? []), ...answers]);
    const tl = timelineFor(h.truth, spec, spec.subject);
    for (const a of answers) {
      figures.checked++;
      const v = dishonest(spec, a, tl, holes) ?? ageDisagrees(a);
      if (v && !reported.has(`${spec.name} ${v.assertion}`)) {
        reported.add(`${spec.name} ${v.assertion}`);
        violations.push({ ...v, t: a.t, client: spec.name, sidecar: spec.sidecar });
      }
    }
  }
  for (const [i, f] of holes.entries()) {
    for (const [key, answers] of watches) {
      const after = f.start + FROZEN_WITHIN_MS + FROZEN_SLACK_MS;
      const fresh = answers
        .filter((a) => a.t >= after && a.t - a.knownAt! <= FRESH_AGE_S * 1_000)
        .sort((a, b) => a.t - b.t)[0];
      const ms = fresh ? fresh.t - f.start : Infinity;
      figures.freshAgain[i]!.ms = Math.max(figures.freshAgain[i]!.ms, ms);
      if (ms > FRESH_AGAIN_MS) {
        violations.push({
          assertion: "fresh-again-after-black-hole",
          t: f.start + FRESH_AGAIN_MS,
          client: key,
          sidecar: key.split(" ")[0],
          detail: `the watch of ${key} answered with an age of at most ${FRESH_AGE_S} s only ` +
            (fresh ? `at ${at(fresh.t)}` : "never") + ` after the black hole of ${at(f.start)}` +
            ` (bound ${FRESH_AGAIN_MS / 1000} s)`,
          context: [],
        });
      }
    }
  }
  return figures;
}

/** An answer whose last-updated moment claims more than its view shows. */
function dishonest(
  spec: ClientSpec,
  a: Answer,
  tl: Point[],
  holes: { start: number }[],
): Omit<Violation, "t" | "client" | "sidecar"> | undefined {
  const k = a.knownAt!;
  const inHole = holes.some((f) =>
    k >= f.start && k <= f.start + FROZEN_WITHIN_MS + FROZEN_SLACK_MS
  );
  const lag = inHole ? FROZEN_WITHIN_MS + FROZEN_SLACK_MS : NORMAL_LAG_MS;
  const owed = tl.filter((p) => p.seenAt <= k - lag).at(-1);
  if (!owed) return undefined;
  const p = projectAnswer(spec.kind, a, spec.namespace);
  if (isFresh(tl, p, owed.rv)) return undefined;
  return {
    assertion: "last-updated-is-honest",
    detail: `said current at ${new Date(k + performance.timeOrigin).toISOString()} (age ` +
      `${((a.t - k) / 1000).toFixed(1)} s), but shows a state older than the truth at ` +
      `${owed.rv}, seen ${((k - owed.seenAt) / 1000).toFixed(1)} s before that moment: ${p}`,
    context: truthAround(tl, owed.rv),
  };
}

/** An age header that does not agree with the last-updated moment it comes with. */
function ageDisagrees(a: Answer): Omit<Violation, "t" | "client" | "sidecar"> | undefined {
  if (a.age === undefined) {
    return { assertion: "age-agrees", detail: "X-Discovery-Age-Seconds missing", context: [] };
  }
  // Served at most a request's time before it arrived; the age is in whole seconds.
  const most = (a.t - a.knownAt!) / 1000 + 1;
  if (a.age >= 0 && a.age <= most) return undefined;
  return {
    assertion: "age-agrees",
    detail: `X-Discovery-Age-Seconds ${a.age} with X-Discovery-Last-Updated ` +
      `${((a.t - a.knownAt!) / 1000).toFixed(1)} s before the answer arrived`,
    context: [],
  };
}
