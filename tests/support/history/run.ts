/**
 * Runs one history-checker session: starts the truth, the tenants' namespaces (one per seed),
 * the three sidecars (names, every Service, label selector; each watching every namespace
 * through a fault proxy of its own) and the tenants' clients, applies the seeded changes while
 * the faults of the first seed's schedule happen to every sidecar at once, settles, and returns
 * the history for the checker. Faults: every proxy cut (RST), every proxy black-holed with the
 * sidecars' default settings (open connections stay dead; new ones pass), the API server
 * stopped for 30-42 s, and etcd compacted then the API server restarted (changes paused and the
 * truth caught up first, so it loses nothing). After each fault every tenant makes a change the
 * views must show by the fault's deadline.
 *
 * @module
 */
import { compactEtcd, restartAPIServer, startAPIServer, stopAPIServer } from "../cluster/faults.ts";
import { createNamespace } from "../cluster/fixtures.ts";
import { sleep } from "../cluster/wait.ts";
import type { FaultRecord, History } from "./checker.ts";
import { collectLines } from "./logs.ts";
import { Recorder } from "./recorder.ts";
import { changeSchedule, type Fault, faultSchedule } from "./schedule.ts";
import { heapUsed, type Sidecars, startSidecars } from "./sidecars.ts";
import { createServices, startTenant, type Tenant } from "./tenant.ts";
import { Truth } from "./truth.ts";

/** A black-holed connection must be noticed and the view true again within this (issue 8). */
const BLACKHOLE_DEADLINE_MS = 60_000;
/** After the API server returns (or a cut), the view must be true again within this. */
const RETURN_DEADLINE_MS = 10_000;
/** Changes before the first fault, so the views have a history to go back to. */
const WARMUP_MS = 6_000;
/** Changes kept for after the faults (each tenant makes at most this many per fault). */
const RESERVED_PER_FAULT = 8;
/** Heap readings per sidecar at each end of the run (the least is kept). */
const HEAP_READINGS = 5;
/** The truth counts as settled after this long without a change (controllers done). */
const QUIET_MS = 2_000;

/** Options of {@linkcode runHistory}. */
export interface RunOptions {
  /** One tenant per seed; the first seed also orders the faults. */
  seeds: number[];
  /** Changes per tenant in the background (more are made after each fault). */
  changes: number;
  /** How many times the set of faults is repeated. */
  rounds: number;
  /** Progress lines. */
  log: (line: string) => void;
}

/** Runs a session and returns its history (the caller checks it). */
export async function runHistory(
  o: RunOptions,
): Promise<History & { tenants: Tenant[]; truth: Truth }> {
  const t0 = performance.now();
  const at = () => `${((performance.now() - t0) / 1000).toFixed(1)}s`;
  const namespaces: string[] = [];
  for (const seed of o.seeds) namespaces.push(await createNamespace(`history-${seed}`));
  for (const ns of namespaces) await createServices(ns);
  const truth = new Truth();
  await truth.start(namespaces);
  const recorder = new Recorder();
  const tenants: Tenant[] = [];
  let sidecars: Sidecars | undefined;
  const faults: FaultRecord[] = [];
  let paused = false;
  let stopped = false;
  let apiDown = false;
  const loops: Promise<void>[] = [];
  try {
    sidecars = await startSidecars(namespaces);
    for (const [i, seed] of o.seeds.entries()) {
      tenants.push(
        startTenant(namespaces[i]!, {
          seed,
          changes: changeSchedule(seed, o.changes + RESERVED_PER_FAULT * 4 * o.rounds),
          budget: o.changes,
          recorder,
          sidecars,
          namespaces,
        }),
      );
    }
    o.log(`${at()} ${tenants.length} tenant(s) ready: ${namespaces.join(", ")}`);
    const gate = { paused: () => paused, stopped: () => stopped };
    for (const t of tenants) loops.push(t.run(gate));
    await sleep(WARMUP_MS);
    const heapBefore = await readHeaps(sidecars);
    for (const fault of faultSchedule(o.seeds[0]!, o.rounds)) {
      const pause = (p: boolean) => paused = p;
      const record = await inject(fault, {
        tenants,
        sidecars,
        truth,
        pause,
        setApiDown: (d) => apiDown = d,
      });
      faults.push(record);
      o.log(
        `${at()} ${record.label}: change seen at rv ${record.refRv}; deadline in ` +
          `${((record.deadline - performance.now()) / 1000).toFixed(1)} s`,
      );
      paused = false;
      await sleep(Math.max(0, record.deadline - performance.now()) + 1_000);
    }
    stopped = true;
    await Promise.all(loops);
    await truth.settle(QUIET_MS);
    const final = {
      rv: truth.rv,
      at: truth.lastChangeAt,
      deadline: Math.max(truth.lastChangeAt, performance.now()) + RETURN_DEADLINE_MS,
    };
    o.log(`${at()} settled at rv ${final.rv}; recording until the final deadline`);
    await sleep(final.deadline - performance.now() + 1_000);
    const heapAfter = await readHeaps(sidecars);
    const heap = sidecars.list.map((s, i) => ({
      sidecar: s.name,
      before: heapBefore[i]!,
      after: heapAfter[i]!,
    }));
    return {
      heap,
      answers: recorder.answers,
      clients: tenants.flatMap((t) => t.clients),
      truth,
      faults,
      final,
      t0,
      tenants,
      logs: collectLines(sidecars.list.map((s) => ({ name: s.name, logs: s.process.logs }))),
    };
  } finally {
    stopped = true;
    if (apiDown) await startAPIServer().catch(() => {});
    await Promise.all(loops).catch(() => {});
    const running = await recorder.stop();
    if (running.length) {
      o.log(`warning: clients still running after their stop: ${running.join(", ")}`);
    }
    await truth.stop();
    await sidecars?.close();
  }
}

/** Readings of the heap per sidecar, each the least of a few: the sidecars run `--gc-global`,
 * so a reading just after a collection is what is reachable, and the least is the closest. */
async function readHeaps(sidecars: Sidecars): Promise<number[]> {
  const least = sidecars.list.map(() => Infinity);
  for (let i = 0; i < HEAP_READINGS; i++) {
    if (i) await sleep(500);
    for (const [j, s] of sidecars.list.entries()) {
      least[j] = Math.min(least[j]!, await heapUsed(s));
    }
  }
  return least;
}

interface InjectContext {
  tenants: Tenant[];
  sidecars: Sidecars;
  truth: Truth;
  pause: (paused: boolean) => void;
  setApiDown: (down: boolean) => void;
}

/** Before a fault, every sidecar has had a watch open this long at most to wait for. */
const CONNECTED_TIMEOUT_MS = 15_000;

/** Waits until every sidecar holds its connection (HTTP/2: every watch of a sidecar shares
 * one) through its proxy, so the fault hits live watches rather than a sidecar still backing off from the previous one; fails when
 * one does not by the timeout (the fault would hit nothing and prove nothing). */
async function connected(sidecars: Sidecars): Promise<void> {
  const deadline = performance.now() + CONNECTED_TIMEOUT_MS;
  for (const s of sidecars.list) {
    let open = (await s.proxy.stats()).open;
    while (open < 1) {
      if (performance.now() >= deadline) {
        throw new Error(
          `before a fault, the ${s.name} sidecar held no connection through its proxy ` +
            `after ${CONNECTED_TIMEOUT_MS / 1000} s: ` +
            "a watch was not resumed",
        );
      }
      await sleep(200);
      open = (await s.proxy.stats()).open;
    }
  }
}

async function inject(fault: Fault, c: InjectContext): Promise<FaultRecord> {
  await connected(c.sidecars);
  const start = performance.now();
  let end = start;
  let label: string = fault.kind;
  let budget = RETURN_DEADLINE_MS;
  switch (fault.kind) {
    case "cut":
      for (const s of c.sidecars.list) await s.proxy.cut();
      break;
    case "blackhole":
      // Open connections stay dead (a lost NAT entry); new ones pass at once.
      for (const s of c.sidecars.list) {
        await s.proxy.blackhole();
        await s.proxy.pass();
      }
      budget = BLACKHOLE_DEADLINE_MS;
      break;
    case "outage":
      label = `API server outage ${(fault.ms / 1000).toFixed(1)} s`;
      c.pause(true);
      c.setApiDown(true);
      await stopAPIServer();
      await sleep(fault.ms);
      await startAPIServer();
      c.setApiDown(false);
      end = performance.now();
      break;
    case "compactRestart":
      label = "etcd compaction + API server restart";
      c.pause(true);
      await c.truth.settle(QUIET_MS);
      await compactEtcd();
      c.setApiDown(true);
      await restartAPIServer();
      c.setApiDown(false);
      end = performance.now();
      break;
  }
  c.pause(true);
  const ref = await changeAndSee(c);
  const from = fault.kind === "blackhole" ? start : end;
  return {
    label,
    start,
    end,
    refRv: ref.rv,
    refAt: ref.at,
    from,
    deadline: Math.max(from + budget, ref.at + 5_000),
  };
}

/** Each tenant makes changes until the truth shows one in its namespace; returns the newest
 * resourceVersion and when all were seen. Fails when a tenant's changes did not land: the
 * recovery check would then compare the views with a state they already showed before the
 * fault, and a stale view would count as recovered. */
async function changeAndSee(c: InjectContext): Promise<{ rv: number; at: number }> {
  await Promise.all(c.tenants.map(async (t) => {
    const before = c.truth.lastChangeIn(t.namespace);
    const landed = () => c.truth.lastChangeIn(t.namespace) !== before;
    for (let i = 0; i < RESERVED_PER_FAULT && !landed(); i++) {
      await t.step();
      const until = performance.now() + 2_000;
      while (!landed() && performance.now() < until) await sleep(50);
    }
    if (!landed()) {
      throw new Error(
        `after a fault, none of ${RESERVED_PER_FAULT} changes in ${t.namespace} reached the ` +
          `truth (${t.failed} refused so far): no fresh state to recover to`,
      );
    }
  }));
  await sleep(500);
  return { rv: c.truth.rv, at: performance.now() };
}
