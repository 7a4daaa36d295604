/**
 * What every scenario of the benchmark gets from the runner (bench/run.ts): the sizes (full, or
 * quick for checking that a scenario works), the configurations to measure, the results being
 * filled, a log, the children to stop at the end, and the cluster fixtures shared by scenarios.
 *
 * @module
 */
import type { Variant } from "./_processes.ts";
import type { Results } from "./types.ts";
import { now } from "./util.ts";

/** The sizes of a run; `--quick` shrinks every one of them. */
export interface Sizes {
  /** Start-up runs per variant (the median is reported). */
  startupRuns: number;
  /** Requests each process serves before its idle memory is read. */
  loadRequests: number;
  /** Idle time after the load, before memory is read. */
  idleWaitMs: number;
  /** Changes per propagation series (two series). */
  changes: number;
  /** Pause between the paced series' changes. */
  changeGapMs: number;
  /** The API-load window (s): longer than this, one watch renewal can show. */
  windowS: number;
  /** wrk seconds per run and rounds per variant and target. */
  wrkS: number;
  wrkRounds: number;
  /** Pods of the serving Service (1,000: a 168 kB body) and of the big Service. */
  servingPods: number;
  bigPods: number;
  /** Small Services of the scale scenario. */
  manyServices: number;
  /** Updates per scale case. */
  scaleUpdates: number;
  /** Whether to probe long --service-name lists (needs the 1,000 Services). */
  selectorProbes: boolean;
  /** Fleet: numbers of watchers (and of pollers), real sidecars among them, and timings. */
  fleetLevels: number[];
  fleetSidecars: number;
  fleetSettleS: number;
  fleetWindowS: number;
  fleetChanges: number;
  /** Rounds of client lifetimes of the soak (one of each kind a round); `--lifetimes=N`. */
  lifetimes: number;
}

/** The sizes of `deno task bench`. */
export const FULL: Sizes = {
  startupRuns: 7,
  loadRequests: 1000,
  idleWaitMs: 3000,
  changes: 300,
  changeGapMs: 50,
  windowS: 180,
  wrkS: 5,
  wrkRounds: 3,
  servingPods: 1000,
  bigPods: 5000,
  manyServices: 1000,
  scaleUpdates: 60,
  selectorProbes: true,
  fleetLevels: [1, 100, 1000],
  fleetSidecars: 4,
  fleetSettleS: 5,
  fleetWindowS: 20,
  fleetChanges: 20,
  // The soak of issue 17: 50,000 of each kind, ~8 min here.
  lifetimes: 50_000,
};

/** `--quick`: every scenario runs end to end in well under a minute; figures are not kept. */
export const QUICK: Sizes = {
  startupRuns: 2,
  loadRequests: 200,
  idleWaitMs: 1000,
  changes: 20,
  changeGapMs: 50,
  windowS: 15,
  wrkS: 1,
  wrkRounds: 1,
  servingPods: 200,
  bigPods: 500,
  manyServices: 100,
  scaleUpdates: 5,
  selectorProbes: false,
  fleetLevels: [1, 20],
  fleetSidecars: 1,
  fleetSettleS: 2,
  fleetWindowS: 4,
  fleetChanges: 3,
  lifetimes: 1_000,
};

/** One scenario's view of the run. */
export interface Context {
  quick: boolean;
  sizes: Sizes;
  /** The configurations each sidecar figure is taken in, the shipped one first. */
  variants: Variant[];
  /** Filled by the scenarios; each writes only its own keys. */
  results: Results;
  log(msg: string): void;
  /** Stop children and remove temp dirs, run in reverse at the end. */
  cleanups: (() => Promise<unknown>)[];
  /** Fixtures made once per run, by name (see bench/_fixtures.ts). */
  fixtures: Map<string, Promise<unknown>>;
}

/** A context with a log that prints seconds since the start. */
export function createContext(
  options: { quick: boolean; variants: Variant[]; results: Results },
): Context {
  const started = now();
  return {
    ...options,
    sizes: options.quick ? QUICK : FULL,
    log: (msg) => {
      const s = ((now() - started) / 1000).toFixed(1).padStart(6);
      console.error(`[bench ${s}s] ${msg}`);
    },
    cleanups: [],
    fixtures: new Map(),
  };
}
