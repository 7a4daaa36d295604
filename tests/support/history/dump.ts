/**
 * Saves a history-checker run (answers, clients, faults, the truth's timelines) as one JSON file
 * in a temp directory, and checks a saved run again: `deno run --allow-read
 * tests/support/history/dump.ts <file>` prints the same report without a cluster, so a failure
 * seen in CI can be read and the checker changed against the very same history.
 *
 * @module
 */
import { checkHistory, formatViolations, type History, type TruthView } from "./checker.ts";
import type { PickPoint, TruthPoint } from "./truth.ts";

interface Dump extends Omit<History, "truth"> {
  seeds: number[];
  truth: {
    startRv: number;
    timelines: Record<string, TruthPoint[]>;
    picks: Record<string, PickPoint[]>;
  };
}

/** Writes the run to a new temp file and returns its path. */
export async function saveHistory(h: History, seeds: number[]): Promise<string> {
  const timelines: Record<string, TruthPoint[]> = {};
  const picks: Record<string, PickPoint[]> = {};
  const namespaces = new Set(h.clients.map((c) => c.namespace));
  for (const ns of namespaces) {
    for (const key of h.truth.services(ns)) {
      const i = key.indexOf("/");
      timelines[key] = h.truth.timeline(key.slice(0, i), key.slice(i + 1));
      picks[key] = h.truth.picked(key.slice(0, i), key.slice(i + 1));
    }
  }
  const { answers, clients, faults, final, t0, heap } = h;
  const truth = { startRv: h.truth.startRv, timelines, picks };
  const dump: Dump = { answers, clients, faults, final, t0, heap, seeds, truth };
  const path = await Deno.makeTempFile({ prefix: "kpd-history-", suffix: ".json" });
  await Deno.writeTextFile(path, JSON.stringify(dump));
  return path;
}

/** Reads a saved run back as a history the checker takes. */
export async function loadHistory(path: string): Promise<History & { seeds: number[] }> {
  const dump = JSON.parse(await Deno.readTextFile(path)) as Dump;
  const { timelines, picks, startRv } = dump.truth;
  const truth: TruthView = {
    startRv,
    timeline: (ns, name) => timelines[`${ns}/${name}`] ?? [],
    services: (ns) => Object.keys(timelines).filter((k) => k.startsWith(`${ns}/`)),
    picked: (ns, name) => picks[`${ns}/${name}`] ?? [],
  };
  return { ...dump, truth };
}

if (import.meta.main) {
  const h = await loadHistory(Deno.args[0]!);
  const { violations, figures } = checkHistory(h);
  console.log(JSON.stringify(figures));
  console.log(violations.length ? formatViolations(violations, h.seeds, h) : "no violation");
}
