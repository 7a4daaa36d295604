/**
 * The history checker's "no change skipped on resume": a stream of every Service resumed with
 * `Last-Event-ID: N` is owed every Service whose view changed after N (docs/api.md: a change is
 * never given an index below one already handed out, so a resume misses nothing). What the
 * sidecar served is known from its other clients: each view a poller saw, with its index (a
 * single Service's `X-Discovery-Index`, or each entry's `index` in `/v1/services`). A view seen
 * with index I < N was made before the change that carried N, so by the resume the stream must
 * have given the Service an event with id I or later (the view, a newer one, or its removal).
 * Only views seen a moment after the stream first opened count: older ones may have been gone
 * before its first snapshot. And the means by which a resume would skip: a stream resumed at N
 * (without a reset) never carries an id below N, for a change given an id below one already
 * handed out is one that a resume at that id misses.
 *
 * @module
 */
import type { ClientSpec, History, Violation } from "./checker.ts";
import type { Answer } from "./recorder.ts";

/** A view seen this long after a stream first opened was there when it opened, or came after
 * (ms): more than a request's time in flight. */
const FIRST_OPEN_MARGIN_MS = 1_000;

/** Views of one sidecar seen by its pollers: per Service, each (time, index). */
type Seen = Map<string, { t: number; index: number; client: string }[]>;

/** Checks every resume of every all-Services stream; returns how many resumes it checked. */
export function checkResumes(
  h: History,
  byClient: Map<string, Answer[]>,
  violations: Violation[],
): number {
  const seenBySidecar = new Map<string, Seen>();
  let checked = 0;
  const at = (t: number) => `${((t - h.t0) / 1000).toFixed(2)}s`;
  for (const spec of h.clients) {
    if (spec.kind !== "sse" || spec.subject !== "*") continue;
    const answers = byClient.get(spec.name) ?? [];
    const firstOpen = answers[0]?.t;
    if (firstOpen === undefined) continue;
    let seen = seenBySidecar.get(spec.sidecar);
    if (!seen) seenBySidecar.set(spec.sidecar, seen = viewsSeen(h, byClient, spec.sidecar));
    const lastId = new Map<string, number>();
    let reported = false;
    // The resume id of the stream under way; undefined after a reset (a snapshot follows).
    let resumedAt: Answer | undefined;
    let belowReported = false;
    for (const a of answers) {
      if (a.event !== "(resumed)") {
        if (a.event === "reset" || a.event === "(stream ended)" || a.status !== 200) {
          resumedAt = undefined;
        }
        if (a.event && !a.event.startsWith("(") && a.index !== undefined) {
          lastId.set(a.subject, Math.max(lastId.get(a.subject) ?? -Infinity, a.index));
          if (resumedAt && a.index < resumedAt.index! && !belowReported) {
            belowReported = true;
            violations.push(below(spec, { a, resumedAt, at }));
          }
        }
        continue;
      }
      checked++;
      resumedAt = a;
      const n = a.index!;
      for (const [service, views] of seen) {
        // The newest view seen with an index below N: the stream owed it (or newer) already.
        let owed: { t: number; index: number; client: string } | undefined;
        for (const v of views) {
          if (v.t < firstOpen + FIRST_OPEN_MARGIN_MS || v.index >= n) continue;
          if (!owed || v.index > owed.index) owed = v;
        }
        const had = lastId.get(service);
        if (!owed || (had !== undefined && had >= owed.index) || reported) continue;
        reported = true;
        violations.push(skipped(spec, { a, service, owed, had, at }));
      }
    }
  }
  return checked;
}

function skipped(
  spec: ClientSpec,
  o: {
    a: Answer;
    service: string;
    owed: { t: number; index: number; client: string };
    had: number | undefined;
    at: (t: number) => string;
  },
): Violation {
  return {
    assertion: "resume-skips-no-change",
    t: o.a.t,
    client: spec.name,
    sidecar: spec.sidecar,
    detail: `resumed with Last-Event-ID ${o.a.index} at ${o.at(o.a.t)}, but its last event for ` +
      `${o.service} had id ${o.had ?? "(none)"}, while the sidecar served ${o.service} with ` +
      `index ${o.owed.index} (seen by ${o.owed.client} at ${o.at(o.owed.t)}): a change below ` +
      "the resume id that the stream never carried, so the resume skips it",
    context: [],
  };
}

function below(
  spec: ClientSpec,
  o: { a: Answer; resumedAt: Answer; at: (t: number) => string },
): Violation {
  return {
    assertion: "resumed-ids-not-below",
    t: o.a.t,
    client: spec.name,
    sidecar: spec.sidecar,
    detail: `the stream resumed with Last-Event-ID ${o.resumedAt.index} at ` +
      `${o.at(o.resumedAt.t)} carried ${o.a.event} ${o.a.subject} with id ${o.a.index} at ` +
      `${o.at(o.a.t)}: a change given an id below one already handed out, which a resume ` +
      "from that id misses",
    context: [],
  };
}

/** Every view of `sidecar` its pollers saw, per Service. */
function viewsSeen(h: History, byClient: Map<string, Answer[]>, sidecar: string): Seen {
  const seen: Seen = new Map();
  const add = (service: string, t: number, index: number, client: string) => {
    const list = seen.get(service);
    if (list) list.push({ t, index, client });
    else seen.set(service, [{ t, index, client }]);
  };
  for (const spec of h.clients) {
    if (spec.sidecar !== sidecar || !spec.polls) continue;
    for (const a of byClient.get(spec.name) ?? []) {
      if (a.status !== 200) continue;
      if (spec.kind === "service" && a.index !== undefined) {
        add(spec.subject, a.t, a.index, spec.name);
      }
      if (spec.kind !== "services") continue;
      try {
        const list = JSON.parse(a.body) as {
          services: { namespace: string; name: string; index: number }[];
        };
        for (const s of list.services) add(`${s.namespace}/${s.name}`, a.t, s.index, spec.name);
      } catch {
        // An unreadable body is the sequence check's to report.
      }
    }
  }
  return seen;
}
