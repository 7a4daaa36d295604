/**
 * Scenario `fleet`: what N pods' sidecars cost the kube-apiserver, and how long a change takes
 * to reach all of them, beside N clients polling v1 Endpoints every 5 s as the Go service did.
 *
 * Each pod runs its own sidecar, so N pods hold N watches. N Deno processes do not fit on 2
 * cores: a level of N watchers is a few real sidecars (the shipped flags) plus the sidecar's own
 * `Reflector` (lib/reflector.ts) N − sidecars times, each on its own connection, in processes
 * of at most {@linkcode PER_WORKER} (bench/fleet_worker.ts). The Service is selector-less with a
 * hand-written v1 Endpoints object, which the EndpointSlice mirroring controller turns into the
 * slice the watchers read, so one write reaches both kinds of client. The kube-apiserver's
 * VmRSS and CPU time come from /proc of its process (a child of `control-plane up`, as this
 * bench is), its Go heap in use and open watches from its /metrics.
 *
 * @module
 */
import { restartAPIServer } from "../tests/support/cluster/faults.ts";
import { createNamespace, createService } from "../tests/support/cluster/fixtures.ts";
import { kubeFetch, kubeOk } from "../tests/support/cluster/http.ts";
import { waitFor } from "../tests/support/cluster/wait.ts";
import { DISCOVERY_RULES, podMount } from "../tests/support/sidecar.ts";
import type { Context } from "./_context.ts";
import {
  mirrorWatch,
  type Observers,
  POLL_PERIOD_MS,
  SERVICE,
  startSidecars,
  startWorker,
} from "./_fleet_clients.ts";
import { clusterSlicesPath } from "./_fixtures.ts";
import type { FleetLevel, FleetSample } from "./types.ts";
import {
  now,
  parseMetric,
  percentile,
  procCpuMs,
  procMemory,
  round,
  sleep,
  summarize,
} from "./util.ts";

/** Clients per worker process: 4 processes for 1,000, so the 2 cores are not all theirs. */
const PER_WORKER = 250;

/** The address a change writes first in the Endpoints: change k is 10.250.x.y. */
function marker(k: number): string {
  return `10.250.${(k >> 8) & 255}.${k & 255}`;
}

/** The kube-apiserver of this control plane: a sibling process (same parent) named apiserver. */
export function apiserverPid(): number {
  const parent = Number(Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ")[1]);
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const argv = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (argv[1] === "apiserver" && ppid === parent) return Number(e.name);
    } catch {
      // gone
    }
  }
  throw new Error("no kube-apiserver child of this bench's parent: run under `control-plane up`");
}

/** The API server now: VmRSS, Go heap, open slice watches, GETs of Endpoints so far. */
async function reading(pid: number) {
  const text = await (await kubeFetch("GET", "/metrics")).text();
  const heap = [...parseMetric(text, "go_memstats_heap_inuse_bytes").values()][0]?.value ??
    Number(text.match(/^go_memstats_heap_inuse_bytes (\S+)/m)?.[1] ?? NaN);
  const watches = parseMetric(
    text,
    "apiserver_longrunning_requests",
    (l) => l.resource === "endpointslices" && l.verb === "WATCH" && l.scope === "namespace",
  );
  const gets = parseMetric(
    text,
    "apiserver_request_total",
    (l) => l.resource === "endpoints" && l.verb === "GET",
  );
  return {
    rssMB: procMemory(pid).rssMB,
    heapMB: round(heap / 1e6, 1),
    openWatches: [...watches.values()].reduce((a, c) => a + c.value, 0),
    endpointsGets: [...gets.values()].reduce((a, c) => a + c.value, 0),
  };
}

/**
 * The API server's CPU (cores) over `windowS`, and the medians of a reading every second in it
 * (its Go heap moves by tens of MB between two collections).
 */
async function sample(pid: number, windowS: number): Promise<FleetSample> {
  const cpu0 = procCpuMs(pid), t0 = now();
  const readings: Awaited<ReturnType<typeof reading>>[] = [];
  do {
    readings.push(await reading(pid));
    await sleep(1000);
  } while (now() - t0 < windowS * 1000);
  const cpuCores = round((procCpuMs(pid) - cpu0) / (now() - t0), 3);
  const gets = readings.at(-1)!.endpointsGets - readings[0]!.endpointsGets;
  const getsS = (readings.length - 1) || 1;
  const med = (g: (r: typeof readings[number]) => number) => percentile(readings.map(g), 50);
  return {
    rssMB: med((r) => r.rssMB),
    heapMB: med((r) => r.heapMB),
    openWatches: med((r) => r.openWatches),
    cpuCores,
    windowS,
    readings: readings.length,
    // Between the first and the last reading, one second apart.
    endpointsGetsPerS: round(gets / getsS, 1),
  };
}

/**
 * Restarts the API server (etcd keeps the data) and measures it with no client: a Go process
 * keeps the memory it has grown, so each level starts from a fresh one.
 */
async function freshBaseline(ctx: Context, s: FleetSetup): Promise<FleetSample> {
  await restartAPIServer();
  s.pid = apiserverPid();
  // The bench's own pooled connection died with the old process: retry until it re-dials.
  await waitFor(async () => {
    try {
      return (await kubeOk<{ kind: string }>("GET", "/api/v1/namespaces/default")).kind !== "";
    } catch {
      return false;
    }
  }, { timeoutMs: 60_000, message: "the restarted API server" });
  await sleep(ctx.sizes.fleetSettleS * 1000);
  const base = await sample(s.pid, ctx.sizes.fleetWindowS);
  ctx.log(
    `fleet: fresh API server: VmRSS ${base.rssMB} MB, heap ${base.heapMB} MB, ${base.cpuCores} cores`,
  );
  return base;
}

interface FleetSetup {
  ns: string;
  env: Record<string, string>;
  pid: number;
  k: number;
}

/** Writes change k: the Endpoints' first address becomes marker(k). */
async function change(s: FleetSetup): Promise<string> {
  const ip = marker(++s.k);
  await kubeOk("PATCH", `/api/v1/namespaces/${s.ns}/endpoints/${SERVICE}`, {
    body: {
      subsets: [{
        addresses: [ip, "10.251.0.1", "10.251.0.2"].map((a) => ({ ip: a })),
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      }],
    },
  });
  return ip;
}

/** One level: N clients of one kind; the API server's cost and the time to reach them all. */
async function level(
  ctx: Context,
  s: FleetSetup,
  mode: "watch" | "poll",
  n: number,
): Promise<FleetLevel> {
  const baseline = await freshBaseline(ctx, s);
  const t0 = now();
  const sidecars = mode === "watch" ? Math.min(ctx.sizes.fleetSidecars, n) : 0;
  const groups: Observers[] = [];
  if (sidecars) groups.push(await startSidecars(ctx, sidecars, s.ns, s.env));
  for (let left = n - sidecars; left > 0; left -= PER_WORKER) {
    groups.push(await startWorker(ctx, mode, Math.min(PER_WORKER, left), s.ns, s.env));
  }
  const startS = round((now() - t0) / 1000, 1);
  ctx.log(`fleet: ${n} ${mode === "watch" ? "watchers" : "pollers"} ready in ${startS} s`);
  await sleep(ctx.sizes.fleetSettleS * 1000);
  const steady = await sample(s.pid, ctx.sizes.fleetWindowS);
  const changes = mode === "watch" ? ctx.sizes.fleetChanges : Math.ceil(ctx.sizes.fleetChanges / 4);
  const timeoutMs = mode === "watch" ? 15_000 : POLL_PERIOD_MS + 10_000;
  const mirror = await mirrorWatch(s.ns);
  const toLast: number[] = [], toMedian: number[] = [], toMirror: number[] = [];
  let missed = 0;
  const cpu0 = procCpuMs(s.pid), c0 = now();
  for (let c = 0; c < changes; c++) {
    const tWrite = now();
    const ip = await change(s);
    const times = (await Promise.all(groups.map((g) => g.times(ip, timeoutMs)))).flat();
    missed += n - times.length;
    const [m] = await mirror.times(ip, 1000);
    if (m !== undefined) toMirror.push(m - tWrite);
    if (times.length) {
      toLast.push(Math.max(...times) - tWrite);
      toMedian.push(percentile(times, 50) - tWrite);
    }
  }
  // Above the steady state's CPU over the same time: what delivering the changes cost.
  const cpuChanges = procCpuMs(s.pid) - cpu0 - steady.cpuCores * (now() - c0);
  const cpuMsPerChange = round(cpuChanges / changes, 1);
  for (const g of [...groups, mirror]) await g.stop();
  const per = (x: number, b: number, scale: number) => round((x - b) * scale / n, 2);
  const l: FleetLevel = {
    mode,
    clients: n,
    sidecars,
    reflectors: mode === "watch" ? n - sidecars : 0,
    workerProcesses: groups.length - (sidecars ? 1 : 0),
    startS,
    baseline,
    steady,
    perClient: {
      rssKB: per(steady.rssMB, baseline.rssMB, 1000),
      heapKB: per(steady.heapMB, baseline.heapMB, 1000),
      cpuMsPerS: per(steady.cpuCores, baseline.cpuCores, 1000),
    },
    changes,
    missed,
    toLast: summarize(toLast, 1),
    toMedian: summarize(toMedian, 1),
    toMirror: summarize(toMirror, 1),
    cpuMsPerChange,
  };
  ctx.log(
    `fleet: ${n} ${mode}: API server VmRSS ${steady.rssMB} MB (base ${baseline.rssMB}), heap ` +
      `${steady.heapMB} MB, ${steady.cpuCores} cores (base ${baseline.cpuCores}), open watches ` +
      `${steady.openWatches}; to the last p50 ${l.toLast.p50} ms, p99 ${l.toLast.p99} ms; ` +
      `missed ${missed}`,
  );
  return l;
}

/** Fills `results.fleet`. */
export async function fleet(ctx: Context): Promise<void> {
  const pid = apiserverPid();
  const ns = await createNamespace("bench-fleet");
  await createService(ns, SERVICE, { selector: null });
  const mount = await podMount(ns, {
    rules: [...DISCOVERY_RULES, { apiGroups: [""], resources: ["endpoints"], verbs: ["get"] }],
  });
  ctx.cleanups.push(() => mount.remove());
  await kubeOk("POST", `/api/v1/namespaces/${ns}/endpoints`, {
    body: { apiVersion: "v1", kind: "Endpoints", metadata: { name: SERVICE }, subsets: [] },
  });
  const s: FleetSetup = { ns, env: mount.env, pid, k: 0 };
  const first = await change(s);
  await waitFor(async () => {
    const r = await kubeFetch("GET", clusterSlicesPath(ns, SERVICE));
    return (await r.text()).includes(first);
  }, { timeoutMs: 30_000, message: "the mirrored EndpointSlice of the fleet Service" });
  const levels: FleetLevel[] = [];
  for (const mode of ["watch", "poll"] as const) {
    for (const n of ctx.sizes.fleetLevels) levels.push(await level(ctx, s, mode, n));
  }
  ctx.results.fleet = { pollPeriodMs: POLL_PERIOD_MS, perWorker: PER_WORKER, levels };
}
