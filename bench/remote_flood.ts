/**
 * Scenario `remote_flood`: what clients outside the Pod cost (issue 16). A client in a network
 * namespace of its own (tests/support/netns.ts, tests/support/hostile_client.ts's flood mode)
 * holds half-open connections (a request line, never the end of the headers), then idle
 * keep-alive ones (one /health, then nothing), against a sidecar whose caps and timers are moved
 * out of the way; the sidecar's VmRSS and sockets are read once each kind is held. From those:
 * the cost per held connection (the process's own memory, and the kernel's for its sockets, an
 * estimate from the socket count and this kernel's slab object sizes), what the default caps
 * allow at most, and how many connections fit within the examples' memory request and limit.
 * Meanwhile the Pod's own client reads GET /endpoints on 127.0.0.1 back to back: its latency
 * during the flood beside the same reads without it. Needs root (`ip netns`).
 *
 * Standalone: `tools/deno run --allow-all bench/remote_flood.ts [--quick]` under
 * `.cache/bin/control-plane up --` prints the results as JSON (and the report's section on
 * stderr), without touching docs/performance.md.
 *
 * @module
 */
import { parseAllDocuments } from "yaml";
import { runHostile } from "../tests/support/hostile_run.ts";
import { createPodNetwork, type PodNetwork } from "../tests/support/netns.ts";
import type { FloodResult, HostileRun } from "../tests/support/hostile_client.ts";
import { type Context, createContext } from "./_context.ts";
import { podService } from "./_fixtures.ts";
import { KeepAliveClient } from "./_http.ts";
import { load, startSidecar, type Variant } from "./_processes.ts";
import type { RemoteFloodRun } from "./types.ts";
import { now, procMemory, round, sleep, summarize } from "./util.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** The example whose sidecar's memory request and limit the figures are set against. */
const EXAMPLE = `${ROOT}examples/nginx-deployment.yaml`;
/** The defaults of --max-remote-connections and --max-connections-per-client (lib/config.ts). */
const DEFAULT_TOTAL = 1000;
const DEFAULT_PER_CLIENT = 200;
/** Connections of each kind: 2,000 (4,000 held, 10,000 sockets in the sidecar) lifts the
 * per-connection cost well above the noise of a ~60 MB process; quick: enough to see it work. */
const FULL_COUNT = 2000;
const QUICK_COUNT = 200;
/** The Pod's own reads alone, before the flood. */
const BASELINE_MS = 5_000;
/** How long a kind may take to be all held (accepted, and for idle ones answered): 2,000 take
 * ~2 s here. */
const SETTLE_TIMEOUT_MS = 10_000;
/** How long the client holds each kind (then it closes them and ends): the half-open ones
 * through the idle ones' settling and reading. */
const HOLD_HALF_OPEN_MS = 2 * SETTLE_TIMEOUT_MS + 2_000;
const HOLD_IDLE_MS = SETTLE_TIMEOUT_MS + 1_000;
/** Caps and timers out of the way, so every connection is held for the whole reading. */
const OUT_OF_THE_WAY = [
  "--max-remote-connections=1000000",
  "--max-connections-per-client=1000000",
  "--header-timeout=3600",
  "--idle-timeout=3600",
];
/** Kernel slabs a TCP socket takes (the socket, its inode, its file and dentry). */
const SOCKET_SLABS = ["sock_inode_cache", "filp", "dentry"];

/** Bytes of a Kubernetes memory quantity (Mi, Gi, M, G or plain). */
function quantityBytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)?$/.exec(q.trim());
  if (!m) throw new TypeError(`${EXAMPLE}: cannot read the memory quantity "${q}"`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, K: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ""] ?? 1;
  return Number(m[1]) * unit;
}

/** The sidecar container's memory request and limit in the example. */
function exampleMemory(): { requestBytes: number; limitBytes: number } {
  for (const doc of parseAllDocuments(Deno.readTextFileSync(EXAMPLE))) {
    // deno-lint-ignore no-explicit-any
    const spec = (doc.toJS() as any)?.spec?.template?.spec;
    for (const c of [...spec?.initContainers ?? [], ...spec?.containers ?? []]) {
      if (!String(c.image).includes("kubernetes-pod-discovery")) continue;
      return {
        requestBytes: quantityBytes(c.resources.requests.memory),
        limitBytes: quantityBytes(c.resources.limits.memory),
      };
    }
  }
  throw new Error(`${EXAMPLE}: no kubernetes-pod-discovery container`);
}

/** Object size in bytes of each named slab on this kernel (/proc/slabinfo, root only). */
function slabSizes(names: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of Deno.readTextFileSync("/proc/slabinfo").split("\n")) {
    const [name, , , size] = line.split(/\s+/);
    if (name && names.includes(name)) out[name] = Number(size);
  }
  return out;
}

/** Open sockets of a process. */
function sockets(pid: number): number {
  let n = 0;
  for (const e of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      if (Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`).startsWith("socket:")) n++;
    } catch {
      // Closed while read.
    }
  }
  return n;
}

/** Polls until the process holds at least `target` sockets, or they stop growing for 3 s. */
async function settle(pid: number, target: number): Promise<number> {
  const deadline = now() + SETTLE_TIMEOUT_MS;
  let last = -1, since = now();
  for (;;) {
    const n = sockets(pid);
    if (n >= target || now() > deadline) return n;
    if (n !== last) [last, since] = [n, now()];
    else if (now() - since > 3_000) return n;
    await sleep(200);
  }
}

/** The hostile client's flood, from inside the namespace; its result once it ends. */
const flood = (net: PodNetwork, run: HostileRun) => runHostile<FloodResult>(net, run);

/** Reads GET /endpoints back to back over one kept-alive connection (no Nagle delay: fetch's
 * showed a 40 ms delayed-ACK floor here), as the Pod's own client, until `stop` resolves. */
async function reads(port: number, stop: Promise<unknown>): Promise<number[]> {
  let done = false;
  void stop.finally(() => done = true);
  const client = await KeepAliveClient.open(port);
  const ms: number[] = [];
  try {
    while (!done) {
      const t0 = now();
      const r = await client.get("/endpoints", { "Accept-Encoding": "identity" });
      if (r.status !== 200) throw new Error(`GET /endpoints on port ${port}: ${r.status}`);
      ms.push(now() - t0);
    }
  } finally {
    client.close();
  }
  return ms;
}

async function measure(
  ctx: Context,
  variant: Variant,
  net: PodNetwork,
  env: Record<string, string>,
): Promise<RemoteFloodRun> {
  const count = ctx.quick ? QUICK_COUNT : FULL_COUNT;
  const sc = await startSidecar(ctx, variant, { env, args: OUT_OF_THE_WAY });
  const port = Number(new URL(sc.url).port);
  await load(sc.url, 200);
  await sleep(1_000);
  const baseline = await reads(port, sleep(BASELINE_MS));
  const idle = { rss: procMemory(sc.pid), sockets: sockets(sc.pid) };
  let endReads = () => {};
  const during = reads(port, new Promise<void>((r) => endReads = r));
  const target = { host: net.hostV4, port };
  const halfOpenRun = flood(net, {
    mode: "flood",
    ...target,
    halfOpen: count,
    idle: 0,
    holdMs: HOLD_HALF_OPEN_MS,
  });
  const halfOpenSockets = await settle(sc.pid, idle.sockets + count);
  const halfOpenRss = procMemory(sc.pid);
  const idleRun = flood(net, {
    mode: "flood",
    ...target,
    halfOpen: 0,
    idle: count,
    holdMs: HOLD_IDLE_MS,
  });
  const allSockets = await settle(sc.pid, halfOpenSockets + 3 * count);
  const allRss = procMemory(sc.pid);
  const [h, i] = await Promise.all([halfOpenRun, idleRun]);
  endReads();
  const duringMs = await during;
  await sc.stop();
  const heldHalfOpen = halfOpenSockets - idle.sockets;
  const heldIdle = h.admitted.idle + i.admitted.idle;
  const kb = (mb: number, n: number) => round(mb * 1e6 / 1024 / n, 1);
  return {
    variant,
    connections: count,
    admitted: { halfOpen: h.admitted.halfOpen, idle: heldIdle },
    idleRssMB: idle.rss.rssMB,
    halfOpenRssMB: halfOpenRss.rssMB,
    allRssMB: allRss.rssMB,
    socketsPerHalfOpen: round(heldHalfOpen / count, 2),
    socketsPerIdle: round((allSockets - halfOpenSockets) / count, 2),
    rssKBPerHalfOpen: kb(halfOpenRss.rssMB - idle.rss.rssMB, count),
    rssKBPerIdle: kb(allRss.rssMB - halfOpenRss.rssMB, count),
    baselineMs: summarize(baseline),
    duringMs: summarize(duringMs),
  };
}

/** Fills `results.remoteFlood`. */
export async function remoteFlood(ctx: Context): Promise<void> {
  const web = await podService(ctx, "web100", 100);
  const net = await createPodNetwork();
  ctx.cleanups.push(() => net.remove());
  const slabs = slabSizes(["TCP", "TCPv6", ...SOCKET_SLABS]);
  // The accepted socket is IPv6 (the gate listens on ::), the pipe's two are IPv4 (127.0.0.1).
  const extra = SOCKET_SLABS.reduce((a, s) => a + (slabs[s] ?? 0), 0);
  const kernelKBPerHalfOpen = round(((slabs.TCPv6 ?? 0) + extra) / 1024, 1);
  const kernelKBPerIdle = round(((slabs.TCPv6 ?? 0) + 2 * (slabs.TCP ?? 0) + 3 * extra) / 1024, 1);
  const memory = exampleMemory();
  const runs: RemoteFloodRun[] = [];
  for (const variant of ctx.variants) {
    ctx.log(`remote_flood: sidecar (${variant}) and a client in namespace ${net.name}`);
    const run = await measure(ctx, variant, net, web.env);
    runs.push(run);
    ctx.log(
      `remote_flood ${variant}: idle ${run.idleRssMB} MB, +${run.rssKBPerHalfOpen} KB per ` +
        `half-open, +${run.rssKBPerIdle} KB per idle; /endpoints p99 ${run.baselineMs.p99} ms ` +
        `alone, ${run.duringMs.p99} ms during`,
    );
  }
  ctx.results.remoteFlood = {
    example: EXAMPLE.slice(ROOT.length),
    requestMB: round(memory.requestBytes / 1e6, 1),
    limitMB: round(memory.limitBytes / 1e6, 1),
    defaultTotal: DEFAULT_TOTAL,
    defaultPerClient: DEFAULT_PER_CLIENT,
    slabBytes: slabs,
    kernelKBPerHalfOpen,
    kernelKBPerIdle,
    runs,
  };
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const variants = (Deno.args.find((a) => a.startsWith("--variants="))?.slice(11).split(",") ??
    ["shipped"]) as Variant[];
  // deno-lint-ignore no-explicit-any
  const ctx = createContext({ quick, variants, results: { scenarios: {}, notes: [] } as any });
  try {
    await remoteFlood(ctx);
  } finally {
    for (const c of ctx.cleanups.reverse()) await c().catch(() => {});
  }
  const { remoteFloodSection } = await import("./report_remote.ts");
  console.error(remoteFloodSection(ctx.results).join("\n"));
  console.log(JSON.stringify(ctx.results.remoteFlood));
  Deno.exit(0);
}
