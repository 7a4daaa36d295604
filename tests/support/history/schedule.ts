/**
 * The history checker's schedule: a seeded random sequence of changes to a few Services (Pods
 * scaled up and down, readiness flipped, graceful deletes that leave terminating endpoints,
 * EndpointSlices deleted, Services deleted and recreated) and an order of faults, both made from
 * one seed so a failing run is reproduced with `KPD_HISTORY_SEED`. The changes are generated
 * ahead of time against a small model of the cluster, so the same seed gives the same list.
 *
 * @module
 */

/** A seeded PRNG (mulberry32): the same seed gives the same numbers in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One change the schedule makes through the API server. */
export type Change =
  | { kind: "addPod"; service: string; pod: string; ready: boolean }
  | { kind: "flipReady"; service: string; pod: string; ready: boolean }
  | { kind: "terminatePod"; service: string; pod: string }
  | { kind: "removePod"; service: string; pod: string }
  | { kind: "deleteSlice"; service: string }
  | { kind: "deleteService"; service: string }
  | { kind: "createService"; service: string };

/** One fault of the control plane's handles. */
export type Fault =
  | { kind: "cut" }
  | { kind: "blackhole" }
  | { kind: "outage"; ms: number }
  | { kind: "compactRestart" };

/** The Services each tenant of the checker has. */
export const SERVICES = ["svc-a", "svc-b", "svc-c"] as const;

/** More Pods than this per Service make bodies larger without finding more. */
const MAX_PODS = 6;

/** An API server outage of at least 30 s (the brief), ended up to 12 s later at random, so its
 * end falls at a random moment of the sidecar's retries (0.8 s doubling to 30 s). */
const OUTAGE_MS = [30_000, 42_000] as const;

interface ModelPod {
  ready: boolean;
  terminating: boolean;
}

/** `count` changes over {@linkcode SERVICES}, generated against a model of what exists. */
export function changeSchedule(seed: number, count: number): Change[] {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const exists = new Map<string, boolean>(SERVICES.map((s) => [s, true]));
  const pods = new Map<string, Map<string, ModelPod>>(SERVICES.map((s) => [s, new Map()]));
  let next = 0;
  const out: Change[] = [];
  while (out.length < count) {
    const service = pick(SERVICES);
    const own = pods.get(service)!;
    const live = [...own].filter(([, p]) => !p.terminating).map(([n]) => n);
    const dying = [...own].filter(([, p]) => p.terminating).map(([n]) => n);
    const r = rand();
    let change: Change | undefined;
    if (!exists.get(service)) {
      if (r < 0.5) change = { kind: "createService", service };
    } else if (r < 0.3 && live.length < MAX_PODS) {
      change = { kind: "addPod", service, pod: `${service}-${next++}`, ready: rand() < 0.8 };
    } else if (r < 0.55 && live.length) {
      const pod = pick(live);
      change = { kind: "flipReady", service, pod, ready: !own.get(pod)!.ready };
    } else if (r < 0.65 && live.length) {
      change = { kind: "terminatePod", service, pod: pick(live) };
    } else if (r < 0.8 && (live.length || dying.length)) {
      change = { kind: "removePod", service, pod: pick([...dying, ...live]) };
    } else if (r < 0.92) {
      change = { kind: "deleteSlice", service };
    } else if (r < 0.97) {
      change = { kind: "deleteService", service };
    }
    if (!change) continue;
    switch (change.kind) {
      case "addPod":
        own.set(change.pod, { ready: change.ready, terminating: false });
        break;
      case "flipReady":
        own.get(change.pod)!.ready = change.ready;
        break;
      case "terminatePod":
        own.get(change.pod)!.terminating = true;
        break;
      case "removePod":
        own.delete(change.pod);
        break;
      case "deleteService":
        exists.set(service, false);
        break;
      case "createService":
        exists.set(service, true);
        break;
    }
    out.push(change);
  }
  return out;
}

/** The faults of one run in a seeded order; a soak repeats the set `rounds` times. */
export function faultSchedule(seed: number, rounds = 1): Fault[] {
  const rand = prng(seed ^ 0x5eed);
  const out: Fault[] = [];
  for (let i = 0; i < rounds; i++) {
    const round: Fault[] = [
      { kind: "cut" },
      { kind: "blackhole" },
      { kind: "outage", ms: Math.round(OUTAGE_MS[0] + rand() * (OUTAGE_MS[1] - OUTAGE_MS[0])) },
      { kind: "compactRestart" },
    ];
    for (let j = round.length - 1; j > 0; j--) {
      const k = Math.floor(rand() * (j + 1));
      [round[j], round[k]] = [round[k]!, round[j]!];
    }
    out.push(...round);
  }
  return out;
}

/** The seeds of a run: `KPD_HISTORY_SEED` (comma-separated) or `count` fresh random ones. */
export function seedsFromEnv(count: number): number[] {
  const env = Deno.env.get("KPD_HISTORY_SEED");
  if (env) {
    return env.split(",").map((s) => {
      const n = Number(s.trim());
      if (!Number.isInteger(n) || n < 0) {
        throw new RangeError(`Cannot parse KPD_HISTORY_SEED: "${s}" is not a whole number`);
      }
      return n;
    });
  }
  return Array.from({ length: count }, () => Math.floor(Math.random() * 2 ** 31));
}
