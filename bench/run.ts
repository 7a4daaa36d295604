/**
 * The sidecar's benchmark, against the real control plane (etcd + kube-apiserver +
 * kube-controller-manager on 127.0.0.1, see tests/control_plane/):
 *
 *   .cache/bin/control-plane up -- tools/deno run --allow-all bench/run.ts
 *
 * Steps, in order (about 7 minutes in all):
 *  1. start-up: process spawn to /readyz 200, in-cluster mode, several runs;
 *  2. memory: VmRSS/VmHWM at idle of the sidecar (in-cluster and kubeconfig mode) beside
 *     bench/bare_server.ts (and variants of it that add one part of the sidecar each), after
 *     each served the same 1,000 requests;
 *  3. a load window of a few minutes in which one in-cluster sidecar is the only client making
 *     namespace-scoped EndpointSlice reads; in it: propagation (Pod write → served, and the
 *     bench's own watch event → served) over many changes, and the preparation of steps 4 and
 *     5 (Pods, hand-written slices); the API server's request counters are read at both ends;
 *  4. serving: wrk on GET /endpoints of a 1,000-endpoint Service, plain, gzip and 304, beside
 *     the bare server returning the same bytes and headers, alternating, three rounds;
 *  5. scale: 5,000 endpoints (Pods, 50 slices), and 1,000 Services in one namespace watched by
 *     name and with --all-services.
 *
 * Writes bench/results/latest.json and docs/performance.md. `--only=startup,memory,window,
 * serving,scale` runs some steps and prints the JSON instead; `--changes=N`, `--window=S`,
 * `--wrk-duration=S`, `--wrk-rounds=N` change the sizes; `--change-gap=MS` is the pause of
 * the paced propagation series, `--poll-gap=MS` a pause between the /endpoints polls.
 *
 * @module
 */
import {
  createEndpointSlice,
  createNamespace,
  createPods,
  createService,
  type EndpointSlice,
  kubeFetch,
  type KubeList,
  kubeOk,
  openWatch,
  setPodReady,
  testCluster,
  waitFor,
  writeKubeconfig,
} from "../tests/support/cluster.ts";
import {
  childEnv,
  type PodMount,
  podMount,
  SIDECAR_PERMISSIONS,
  type SidecarProcess,
  spawnSidecar,
} from "../tests/support/sidecar.ts";
import { renderMarkdown } from "./report.ts";
import type {
  MemoryProcess,
  MemorySample,
  PodCreation,
  ProbeResult,
  Propagation,
  Results,
  ScaleCase,
  SelectorProbe,
  ServingRun,
  StartupRun,
} from "./types.ts";
import {
  type Counters,
  diffCounters,
  freePort,
  groupCounters,
  hasProgram,
  KeepAliveClient,
  machineInfo,
  now,
  parseMetric,
  percentile,
  procCpuMs,
  type ProcMemory,
  procMemory,
  rawGet,
  round,
  runWrk,
  sleep,
  summarize,
} from "./util.ts";

// ---------------------------------------------------------------------------------------------
// Settings

function flag(name: string): string | undefined {
  const prefix = `--${name}=`;
  return Deno.args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

const ALL_STEPS = ["startup", "memory", "window", "serving", "scale"] as const;
type Step = typeof ALL_STEPS[number];
const only = flag("only")?.split(",") as Step[] | undefined;
const steps = new Set<Step>(only ?? ALL_STEPS);
const partial = only !== undefined;
const CHANGES = Number(flag("changes") ?? 300);
const WINDOW_S = Number(flag("window") ?? 180);
const WRK_S = Number(flag("wrk-duration") ?? 5);
const WRK_ROUNDS = Number(flag("wrk-rounds") ?? 3);
const WRK_CONNECTIONS = 4;
const WRK_THREADS = 1;
const STARTUP_RUNS = 7;
const LOAD_REQUESTS = 1000;
const LOAD_CONCURRENCY = 4;
const IDLE_WAIT_MS = 3000;
const POLL_GAP_MS = Number(flag("poll-gap") ?? 0);
const CHANGE_GAP_MS = Number(flag("change-gap") ?? 50);
const SCALE_UPDATES = 60;
const POD_CONCURRENCY = 40;
const NODE = "bench-node";
const MANAGED_BY = "bench.kubernetes-pod-discovery";

const ROOT = new URL("..", import.meta.url).pathname;
const BARE = new URL("./bare_server.ts", import.meta.url).pathname;
const started = now();

function log(msg: string): void {
  const s = ((now() - started) / 1000).toFixed(1).padStart(6);
  console.error(`[bench ${s}s] ${msg}`);
}

/** Stops every child still running when the bench ends or fails. */
const cleanups: (() => Promise<unknown>)[] = [];

const results: Results = {
  date: new Date().toISOString(),
  durationS: 0,
  command: ".cache/bin/control-plane up -- tools/deno run --allow-all bench/run.ts" +
    (Deno.args.length ? " " + Deno.args.join(" ") : ""),
  kubernetes: "",
  machine: machineInfo(),
  commit: gitDescribe(),
  notes: [
    "The sidecar runs from source (`deno run` of main.ts with --allow-net --allow-read " +
    "--allow-env), as tests/support/sidecar.ts starts it; a `deno compile`d binary or the " +
    "container image may differ in memory and start-up.",
    "Deno's timers fire about every 2 ms here at best (setTimeout(1)), so the /endpoints " +
    "poller of step 3 sends its requests back to back instead of every 1 ms; its measured " +
    "period is the resolution.",
  ],
};

/** The commit measured, with "+dirty" when main.ts or lib/ have uncommitted changes. */
function gitDescribe(): string {
  const git = (...args: string[]) => {
    try {
      const o = new Deno.Command("git", { args, cwd: ROOT, stdout: "piped", stderr: "null" })
        .outputSync();
      return new TextDecoder().decode(o.stdout).trim();
    } catch {
      return "";
    }
  };
  const head = git("rev-parse", "--short", "HEAD") || "unknown";
  return git("status", "--porcelain", "--", "main.ts", "lib") ? `${head}+dirty` : head;
}

// ---------------------------------------------------------------------------------------------
// Processes

/** Waits until GET url answers `status` (polling every `everyMs`); returns when it did. */
async function waitStatus(
  url: string,
  status: number,
  timeoutMs: number,
  everyMs = 2,
): Promise<{ firstAnswer: number; done: number } | undefined> {
  const deadline = now() + timeoutMs;
  let firstAnswer = 0;
  while (now() < deadline) {
    try {
      const r = await fetch(url, { headers: { "Accept-Encoding": "identity" } });
      await r.body?.cancel();
      const t = now();
      if (!firstAnswer) firstAnswer = t;
      if (r.status === status) return { firstAnswer, done: t };
    } catch {
      // not listening yet
    }
    await sleep(everyMs);
  }
  return undefined;
}

interface Sidecar {
  proc: SidecarProcess;
  url: string;
  port: number;
  spawnedAt: number;
  /** Spawn → first answer of /readyz. */
  listenMs: number;
  /** Spawn → /readyz 200; undefined when it did not become ready in time. */
  readyMs?: number;
}

/** Spawns the sidecar (main.ts, as the tests do) on a known port and waits for /readyz 200. */
async function startSidecar(
  env: Record<string, string>,
  args: string[] = [],
  readyTimeoutMs = 60_000,
): Promise<Sidecar> {
  const port = freePort();
  const spawnedAt = now();
  const proc = await spawnSidecar({
    env: { ...env, KUBERNETES_POD_DISCOVERY_LISTEN_PORT: String(port) },
    args,
    waitStarted: false,
  });
  cleanups.push(() => proc.stop().catch(() => {}));
  const url = `http://127.0.0.1:${port}`;
  const t = await waitStatus(`${url}/readyz`, 200, readyTimeoutMs);
  return {
    proc,
    url,
    port,
    spawnedAt,
    listenMs: t ? t.firstAnswer - spawnedAt : NaN,
    readyMs: t ? t.done - spawnedAt : undefined,
  };
}

interface Bare {
  pid: number;
  port: number;
  url: string;
  stop(): Promise<void>;
}

/** Starts bench/bare_server.ts with the same Deno, permissions and environment as the sidecar. */
async function startBare(
  body: string,
  headers: Record<string, string>,
  extra: { args?: string[]; env?: Record<string, string> } = {},
): Promise<Bare> {
  const dir = await Deno.makeTempDir({ prefix: "kpd-bench-" });
  await Deno.writeTextFile(`${dir}/body.json`, body);
  await Deno.writeTextFile(`${dir}/headers.json`, JSON.stringify(headers));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...SIDECAR_PERMISSIONS,
      BARE,
      "--port=0",
      `--body=${dir}/body.json`,
      `--headers=${dir}/headers.json`,
      ...(extra.args ?? []),
    ],
    cwd: ROOT,
    clearEnv: true,
    env: childEnv(extra.env),
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("bare_server.ts exited before listening");
    line += value;
  }
  const drain = (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })();
  const listen = JSON.parse(line.split("\n")[0]!).listen as string;
  const port = Number(listen.split(":").pop());
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGTERM");
    } catch {
      // exited
    }
    await child.status;
    await drain;
    await Deno.remove(dir, { recursive: true });
  };
  cleanups.push(stop);
  return { pid: child.pid, port, url: `http://127.0.0.1:${port}`, stop };
}

/** GETs `path` `n` times with `concurrency` requests in flight, reading every body. */
async function load(url: string, n: number, concurrency: number, path = "/endpoints") {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const r = await fetch(`${url}${path}`, { headers: { "Accept-Encoding": "identity" } });
      if (r.status !== 200) throw new Error(`GET ${url}${path}: ${r.status}`);
      await r.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** The sidecar's /endpoints answer: body and the headers a bare server must copy. */
async function snapshot(url: string): Promise<{ body: string; headers: Record<string, string> }> {
  const r = await fetch(`${url}/endpoints`, { headers: { "Accept-Encoding": "identity" } });
  const body = await r.text();
  if (r.status !== 200) throw new Error(`GET ${url}/endpoints: ${r.status} ${body}`);
  const headers: Record<string, string> = {};
  for (const [k, v] of r.headers) {
    if (["content-length", "date", "vary", "content-encoding"].includes(k)) continue;
    headers[canonical(k)] = v;
  }
  return { body, headers };
}

function canonical(h: string): string {
  if (h === "etag") return "ETag";
  return h.split("-").map((p) => p[0]!.toUpperCase() + p.slice(1)).join("-");
}

// ---------------------------------------------------------------------------------------------
// Cluster objects (every read the bench itself makes is cluster-scoped, so that namespace-scoped
// EndpointSlice reads at the API server are the sidecars' alone)

function clusterSlicesPath(ns: string, service?: string): string {
  const q = new URLSearchParams({ fieldSelector: `metadata.namespace=${ns}` });
  if (service) q.set("labelSelector", `kubernetes.io/service-name=${service}`);
  return `/apis/discovery.k8s.io/v1/endpointslices?${q}`;
}

/** Waits until the Service's slices (read cluster-wide) hold `count` ready endpoints. */
async function waitReadyEndpoints(ns: string, service: string, count: number, timeoutMs: number) {
  await waitFor(async () => {
    const list = await kubeOk<KubeList<EndpointSlice>>("GET", clusterSlicesPath(ns, service));
    const ready = list.items.flatMap((s) =>
      s.endpoints ?? []
    ).filter((e) => e.conditions?.ready !== false).length;
    return ready === count;
  }, { timeoutMs, intervalMs: 500, message: `${count} ready endpoints of ${ns}/${service}` });
}

/** A Service whose Pods (with written status) the EndpointSlice controller turns into slices. */
async function podService(
  prefix: string,
  name: string,
  pods: number,
  concurrency: number,
): Promise<{ ns: string; creation: PodCreation }> {
  const ns = await createNamespace(prefix);
  await createService(ns, name, { ports: [{ name: "http", port: 80, targetPort: 8080 }] });
  const t0 = now();
  await createPods(ns, pods, { labels: { app: name }, nodeName: NODE, prefix: name, concurrency });
  const seconds = (now() - t0) / 1000;
  await waitReadyEndpoints(ns, name, pods, 300_000);
  return {
    ns,
    creation: {
      service: name,
      pods,
      concurrency,
      seconds: round(seconds, 1),
      perSecond: round(pods / seconds, 0),
      slicesReadyS: round((now() - t0) / 1000, 1),
    },
  };
}

function handSlice(ns: string, service: string, name: string, first: number, count: number) {
  const ip = (i: number) => `10.${100 + ((i >> 16) & 127)}.${(i >> 8) & 255}.${i & 255}`;
  return {
    metadata: {
      name,
      labels: {
        "kubernetes.io/service-name": service,
        "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
      },
    },
    addressType: "IPv4",
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    endpoints: Array.from({ length: count }, (_, k) => ({
      addresses: [ip(first + k + 1)],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: NODE,
      targetRef: { kind: "Pod", name: `${service}-${k}`, namespace: ns },
    })),
  };
}

async function inParallel<T>(items: T[], concurrency: number, fn: (t: T, i: number) => unknown) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

// ---------------------------------------------------------------------------------------------
// API server metrics

async function scrape(): Promise<{ requests: Counters; longrunning: Counters }> {
  const r = await kubeFetch("GET", "/metrics");
  const text = await r.text();
  if (r.status !== 200) throw new Error(`GET /metrics: ${r.status}`);
  const eps = (l: Record<string, string>) => l.resource === "endpointslices";
  return {
    requests: parseMetric(text, "apiserver_request_total", eps),
    longrunning: parseMetric(text, "apiserver_longrunning_requests", eps),
  };
}

function byScope(c: Counters, scope: string): Record<string, number> {
  return groupCounters(new Map([...c].filter(([, v]) => v.labels.scope === scope)), ["verb"]);
}

// ---------------------------------------------------------------------------------------------
// Watching the sidecar serve: a poller of /endpoints with If-None-Match, a blocking query on
// /v1/services/{ns}/{name}, and the bench's own watch on the API server

interface View {
  index: number;
  /** When the answer's headers arrived. */
  t: number;
  text: string;
}

/** Polls /endpoints with If-None-Match on one kept-alive connection, `gapMs` apart. */
class Poller {
  polls = 0;
  #etag = "";
  #waiters = new Set<(v: View) => void>();
  #stop = false;
  #done: Promise<void>;
  #t0 = now();
  #t1 = 0;
  #client: KeepAliveClient;

  private constructor(client: KeepAliveClient, readonly gapMs: number) {
    this.#client = client;
    this.#done = this.#run();
  }

  static async start(port: number, gapMs: number): Promise<Poller> {
    return new Poller(await KeepAliveClient.open(port), gapMs);
  }

  async #run(): Promise<void> {
    const decoder = new TextDecoder();
    while (!this.#stop) {
      const headers: Record<string, string> = {};
      if (this.#etag) headers["If-None-Match"] = this.#etag;
      const r = await this.#client.get("/endpoints", headers);
      this.polls++;
      if (r.status === 200) {
        this.#etag = r.headers["etag"] ?? "";
        const v = {
          index: Number(r.headers["x-discovery-index"]),
          t: r.headAt,
          text: decoder.decode(r.body),
        };
        for (const w of this.#waiters) w(v);
      }
      if (this.gapMs > 0) await sleep(this.gapMs);
    }
    this.#t1 = now();
  }

  /** Resolves with the first view from now on that matches. */
  next(match: (v: View) => boolean, timeoutMs: number): Promise<View> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        reject(new Error(`no matching view within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = (v: View) => {
        if (!match(v)) return;
        clearTimeout(timer);
        this.#waiters.delete(w);
        resolve(v);
      };
      this.#waiters.add(w);
    });
  }

  /** Mean time between two polls so far (ms). */
  get periodMs(): number {
    return ((this.#t1 || now()) - this.#t0) / Math.max(1, this.polls);
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
    this.#client.close();
  }
}

/** Blocking queries (`?index=N&wait=60s`) in a loop: when each new index was answered. */
class Blocker {
  /** index → when the answer carrying it arrived. */
  seen = new Map<number, number>();
  #client: KeepAliveClient;
  #done: Promise<void>;
  #stop = false;

  private constructor(client: KeepAliveClient, path: string, index: number) {
    this.#client = client;
    this.#done = this.#run(path, index);
  }

  static async start(port: number, path: string): Promise<Blocker> {
    const client = await KeepAliveClient.open(port);
    const first = await client.get(path);
    return new Blocker(client, path, Number(first.headers["x-discovery-index"]));
  }

  async #run(path: string, index: number): Promise<void> {
    while (!this.#stop) {
      let r;
      try {
        r = await this.#client.get(`${path}?index=${index}&wait=60s`);
      } catch {
        return; // closed by stop()
      }
      const i = Number(r.headers["x-discovery-index"]);
      if (!this.seen.has(i)) this.seen.set(i, r.headAt);
      index = i;
    }
  }

  /** When the answer with this index arrived, waiting up to `timeoutMs`. */
  async arrival(index: number, timeoutMs = 2000): Promise<number | undefined> {
    const deadline = now() + timeoutMs;
    while (now() < deadline) {
      const t = this.seen.get(index);
      if (t !== undefined) return t;
      await sleep(1);
    }
    return undefined;
  }

  async stop(): Promise<void> {
    this.#stop = true;
    this.#client.close();
    await this.#done;
  }
}

/** The bench's own cluster-scoped watch on a Service's slices: when each event arrived. */
class SliceWatch {
  /** resourceVersion → arrival time, type. */
  events = new Map<string, { t: number; type: string }>();
  modified = 0;
  #stream?: Awaited<ReturnType<typeof openWatch<EndpointSlice>>>;
  #done?: Promise<void>;

  async open(ns: string, service?: string): Promise<void> {
    const stream = this.#stream = await openWatch<EndpointSlice>(clusterSlicesPath(ns, service));
    this.#done = (async () => {
      while (true) {
        let ev;
        try {
          ev = await stream.next({ timeoutMs: 3_600_000 });
        } catch {
          return;
        }
        if (!ev) return;
        const t = now();
        if (ev.type === "MODIFIED") this.modified++;
        this.events.set(ev.object.metadata?.resourceVersion ?? "", { t, type: ev.type });
      }
    })();
  }

  /** The arrival of the event with this resourceVersion, waiting up to `timeoutMs`. */
  async arrival(rv: number, timeoutMs = 2000): Promise<number | undefined> {
    const deadline = now() + timeoutMs;
    while (now() < deadline) {
      const e = this.events.get(String(rv));
      if (e) return e.t;
      await sleep(1);
    }
    return undefined;
  }

  async close(): Promise<void> {
    await this.#stream?.close();
    await this.#done;
  }
}

function podReadyIn(text: string, pod: string): boolean | undefined {
  type Addr = { targetRef?: { name?: string } };
  const ep = JSON.parse(text) as {
    subsets?: { addresses?: Addr[]; notReadyAddresses?: Addr[] }[];
  };
  for (const s of ep.subsets ?? []) {
    if (s.addresses?.some((a) => a.targetRef?.name === pod)) return true;
    if (s.notReadyAddresses?.some((a) => a.targetRef?.name === pod)) return false;
  }
  return undefined;
}

function countAddresses(text: string): number {
  const ep = JSON.parse(text) as { subsets?: { addresses?: unknown[] }[] };
  return (ep.subsets ?? []).reduce((a, s) => a + (s.addresses?.length ?? 0), 0);
}

// ---------------------------------------------------------------------------------------------
// Steps

/** The API server's counters once setup was done: the steps before the window start here. */
let afterSetup: Counters | undefined;
/** Processes that listed and watched EndpointSlices before the window (sidecars, bare+watch). */
let watchersBeforeWindow = 0;

interface Setup {
  ns: string;
  mount: PodMount;
  env: Record<string, string>;
}

/** Namespace A: Service web100 with 100 Pods; checks which scopes the controller uses. */
async function setup(): Promise<Setup> {
  const before = await scrape();
  const t0 = now();
  log("creating Service web100 with 100 Pods");
  const { ns } = await podService("bench-a", "web100", 100, 20);
  const mount = await podMount(ns);
  const after = await scrape();
  afterSetup = after.requests;
  const diff = diffCounters(before.requests, after.requests);
  results.apiLoad = {
    verification: {
      namespaceScoped: byScope(diff, "namespace"),
      clusterScoped: byScope(diff, "cluster"),
      resourceScoped: byScope(diff, "resource"),
      openWatches: groupCounters(after.longrunning, ["scope", "verb"]),
      seconds: round((now() - t0) / 1000, 1),
    },
  } as Results["apiLoad"];
  return { ns, mount, env: { ...mount.env, KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "web100" } };
}

async function stepStartup(s: Setup): Promise<void> {
  log(`start-up: ${STARTUP_RUNS} runs`);
  const runs: StartupRun[] = [];
  for (let i = 0; i < STARTUP_RUNS; i++) {
    const sc = await startSidecar(s.env, [], 30_000);
    if (sc.readyMs === undefined) throw new Error(`start-up run ${i}: not ready in 30 s`);
    runs.push({ listenMs: round(sc.listenMs, 1), readyMs: round(sc.readyMs, 1) });
    watchersBeforeWindow++;
    await sc.proc.stop();
  }
  results.startup = {
    service: "web100 (100 endpoints, 1 slice)",
    runs,
    listenMedianMs: round(percentile(runs.map((r) => r.listenMs), 50), 1),
    readyMedianMs: round(percentile(runs.map((r) => r.readyMs), 50), 1),
  };
  log(`start-up median ${results.startup.readyMedianMs} ms to /readyz 200`);
}

/** Memory; returns the in-cluster sidecar, kept for the load window. */
async function stepMemory(s: Setup): Promise<Sidecar> {
  log("memory: sidecar (in-cluster, kubeconfig), bare server and its variants");
  const inCluster = await startSidecar(s.env);
  const snap = await snapshot(inCluster.url);
  const kubeconfig = `${s.mount.dir}/kubeconfig`;
  await writeKubeconfig(kubeconfig, { token: s.mount.token, namespace: s.ns });
  const targets: { key: string; label: string; pid: number; url: string }[] = [
    {
      key: "sidecar",
      label: "sidecar, in-cluster mode",
      pid: inCluster.proc.pid,
      url: inCluster.url,
    },
  ];
  const bares: [string, string, string[]][] = [
    ["bare", "bare Deno.serve (bench/bare_server.ts)", []],
    ["bare+icu", "bare + one localeCompare (ICU collation)", ["--icu"]],
    ["bare+watch", "bare + list/watch over TLS (createHttpClient, fetch)", ["--watch=web100"]],
    ["bare+icu+watch", "bare + both", ["--icu", "--watch=web100"]],
  ];
  const stops: (() => Promise<void>)[] = [];
  for (const [key, label, args] of bares) {
    const b = await startBare(snap.body, snap.headers, { args, env: s.mount.env });
    targets.push({ key, label, pid: b.pid, url: b.url });
    stops.push(b.stop);
  }
  const kc = await startSidecar(
    { KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "web100" },
    [`--kubeconfig=${kubeconfig}`],
  );
  targets.push({
    key: "kubeconfig",
    label: "sidecar, kubeconfig mode (imports @kubernetes/client-node)",
    pid: kc.proc.pid,
    url: kc.url,
  });
  await sleep(1000);
  // The sidecars and the two bare servers with --watch list and watch.
  watchersBeforeWindow +=
    targets.filter((t) => !t.key.startsWith("bare") || t.key.includes("watch"))
      .length;
  const atReady = targets.map((t) => procMemory(t.pid));
  for (const t of targets) await load(t.url, LOAD_REQUESTS, LOAD_CONCURRENCY);
  await sleep(IDLE_WAIT_MS);
  const idle = targets.map((t) => procMemory(t.pid));
  const processes: MemoryProcess[] = targets.map((t, i) => ({
    key: t.key,
    label: t.label,
    sample: { atReady: atReady[i]!, idle: idle[i]! } as MemorySample,
  }));
  const [side, bare] = [idle[0]!, idle[1]!];
  results.memory = {
    endpoints: countAddresses(snap.body),
    requests: LOAD_REQUESTS,
    concurrency: LOAD_CONCURRENCY,
    idleWaitMs: IDLE_WAIT_MS,
    bodyBytes: new TextEncoder().encode(snap.body).length,
    processes,
    ratioRss: round(side.rssMB / bare.rssMB, 2),
    ratioHwm: round(side.hwmMB / bare.hwmMB, 2),
  };
  log(
    "memory idle RSS: " + processes.map((p) => `${p.key} ${p.sample.idle.rssMB} MB`).join(", "),
  );
  for (const stop of stops) await stop();
  await kc.proc.stop();
  return inCluster;
}

/**
 * Propagation on the in-cluster sidecar: toggles one Pod's readiness `CHANGES` times, each
 * `gapMs` after the previous one was served.
 */
async function stepPropagation(
  s: Setup,
  sc: Sidecar,
  label: string,
  gapMs: number,
): Promise<Propagation> {
  log(`propagation: ${CHANGES} readiness changes on web100, ${label}`);
  const watch = new SliceWatch();
  await watch.open(s.ns, "web100");
  const poller = await Poller.start(sc.port, POLL_GAP_MS);
  const blocker = await Blocker.start(sc.port, `/v1/services/${s.ns}/web100`);
  // Let the watch deliver its initial ADDED events and the poller see the current view.
  await sleep(500);
  const w2s: number[] = [], a2s: number[] = [], w2e: number[] = [], e2s: number[] = [];
  const w2a: number[] = [];
  const w2b: number[] = [], e2b: number[] = [];
  let failures = 0;
  const modifiedBefore = watch.modified;
  const cpu0 = procCpuMs(sc.proc.pid);
  const t0 = now();
  for (let i = 0; i < CHANGES; i++) {
    const pod = `web100-${Math.floor(i / 2) % 100}`;
    const ready = i % 2 === 1;
    if (gapMs > 0) await sleep(gapMs);
    const served = poller.next((v) => podReadyIn(v.text, pod) === ready, 15_000);
    const tWrite = now();
    await setPodReady(s.ns, pod, ready);
    const tAck = now();
    let view: View;
    try {
      view = await served;
    } catch {
      failures++;
      continue;
    }
    const tEvent = await watch.arrival(view.index);
    const tBlock = await blocker.arrival(view.index);
    if (tEvent === undefined || tBlock === undefined) {
      failures++;
      continue;
    }
    w2s.push(view.t - tWrite);
    w2a.push(tAck - tWrite);
    a2s.push(view.t - tAck);
    w2e.push(tEvent - tWrite);
    e2s.push(view.t - tEvent);
    w2b.push(tBlock - tWrite);
    e2b.push(tBlock - tEvent);
  }
  const sidecarCpuPercent = round((procCpuMs(sc.proc.pid) - cpu0) / (now() - t0) * 100, 0);
  await poller.stop();
  await blocker.stop();
  await sleep(200);
  const modified = watch.modified - modifiedBefore;
  await watch.close();
  const p: Propagation = {
    label,
    service: "web100",
    endpoints: 100,
    changes: CHANGES,
    failures,
    pollGapMs: POLL_GAP_MS,
    pollPeriodMs: round(poller.periodMs, 3),
    sidecarCpuPercent,
    changeGapMs: gapMs,
    writeToServed: summarize(w2s),
    writeToAck: summarize(w2a),
    ackToServed: summarize(a2s),
    writeToEvent: summarize(w2e),
    eventToServed: summarize(e2s),
    writeToBlocking: summarize(w2b),
    eventToBlocking: summarize(e2b),
    eventsPerChange: round(modified / CHANGES, 2),
  };
  log(
    `propagation write→served p50 ${p.writeToServed.p50} ms, p99 ${p.writeToServed.p99} ms; ` +
      `event→served p50 ${p.eventToServed.p50} ms, p99 ${p.eventToServed.p99} ms; ` +
      `event→blocking p99 ${p.eventToBlocking.p99} ms; poll period ${p.pollPeriodMs} ms; ` +
      `write→event p50 ${p.writeToEvent.p50} p90 ${p.writeToEvent.p90} p99 ${p.writeToEvent.p99}; ` +
      `write→ack p99 ${p.writeToAck.p99} ms`,
  );
  return p;
}

interface Prepared {
  serving?: { ns: string; mount: PodMount };
  big?: { ns: string; mount: PodMount };
  many?: { ns: string; mount: PodMount; names: string[] };
}
const prepared: Prepared = {};
const podCreation: PodCreation[] = [];

async function prepServing(): Promise<void> {
  if (prepared.serving) return;
  log("preparing: Service web1000 with 1,000 Pods");
  const r = await podService("bench-b", "web1000", 1000, POD_CONCURRENCY);
  podCreation.push(r.creation);
  log(
    `1,000 Pods written in ${r.creation.seconds} s, slices ready at ${r.creation.slicesReadyS} s`,
  );
  prepared.serving = { ns: r.ns, mount: await podMount(r.ns) };
}

async function prepScale(): Promise<void> {
  if (!prepared.big) {
    log("preparing: Service web5000 with 5,000 Pods");
    const r = await podService("bench-c", "web5000", 5000, POD_CONCURRENCY);
    podCreation.push(r.creation);
    log(
      `5,000 Pods written in ${r.creation.seconds} s, slices ready at ${r.creation.slicesReadyS} s`,
    );
    prepared.big = { ns: r.ns, mount: await podMount(r.ns) };
  }
  if (!prepared.many) {
    log("preparing: 1,000 selector-less Services with one hand-written slice each");
    const ns = await createNamespace("bench-d");
    const names = Array.from({ length: 1000 }, (_, i) => `svc-${String(i).padStart(4, "0")}`);
    await inParallel(names, 20, async (name, i) => {
      await createService(ns, name, { selector: null });
      await createEndpointSlice(ns, handSlice(ns, name, `${name}-000`, i * 3, 3));
    });
    prepared.many = { ns, mount: await podMount(ns), names };
  }
}

/** The load window: the in-cluster sidecar is the only namespace-scoped reader of slices. */
async function stepWindow(s: Setup, sc: Sidecar): Promise<void> {
  // The API server counts a watch when it ends: let those of the processes just stopped land.
  await sleep(2000);
  const start = await scrape();
  const t0 = now();
  log(`load window: ${WINDOW_S} s with one in-cluster sidecar`);
  const before = afterSetup ? byScope(diffCounters(afterSetup, start.requests), "namespace") : {};
  const churn: { when: string; memory: ProcMemory }[] = [];
  const memLog = (when: string) => {
    const m = procMemory(sc.proc.pid);
    log(`sidecar memory ${when}: VmRSS ${m.rssMB} MB, VmHWM ${m.hwmMB} MB`);
    churn.push({ when, memory: m });
  };
  memLog("before the changes");
  results.propagation = [
    await stepPropagation(s, sc, `paced: ${CHANGE_GAP_MS} ms between changes`, CHANGE_GAP_MS),
  ];
  memLog("after the paced changes");
  results.propagation.push(await stepPropagation(s, sc, "back to back", 0));
  memLog("after the back-to-back changes");
  const lastChange = now();
  if (steps.has("serving") || steps.has("scale")) await prepServing();
  if (steps.has("scale")) await prepScale();
  const left = WINDOW_S * 1000 - (now() - t0);
  if (left > 0) {
    log(`load window: idle for the remaining ${round(left / 1000, 0)} s`);
    await sleep(left);
  }
  const end = await scrape();
  const windowS = (now() - t0) / 1000;
  const diff = diffCounters(start.requests, end.requests);
  const reads = byScope(diff, "namespace");
  const total = Object.values(reads).reduce((a, b) => a + b, 0);
  results.apiLoad = {
    ...results.apiLoad!,
    windowS: round(windowS, 1),
    sidecarRequests: reads,
    beforeWindow: { requests: before, processes: watchersBeforeWindow },
    openWatchesStart: groupCounters(start.longrunning, ["scope", "verb"]),
    openWatchesEnd: groupCounters(end.longrunning, ["scope", "verb"]),
    changesInWindow: (results.propagation ?? []).reduce((a, p) => a + p.changes, 0),
    quietS: round((now() - lastChange) / 1000, 0),
    perHourMeasured: round(total * 3600 / windowS, 1),
    // One watch per renewal; timeouts uniform in 300-600 s: mean 450 s → 3600 / 450 = 8.
    perHourAnalytical: 8,
  };
  memLog(`at the end of the window (${round(windowS, 0)} s)`);
  if (results.memory) results.memory.underChurn = churn;
  log(`load window: namespace-scoped reads ${JSON.stringify(reads)} in ${round(windowS, 0)} s`);
}

async function probe(port: number, headers: Record<string, string>): Promise<ProbeResult> {
  const r = await rawGet(port, "/endpoints", headers);
  return {
    status: r.status,
    contentEncoding: r.headers["content-encoding"] ?? null,
    contentLength: r.headers["content-length"] ?? null,
    transferEncoding: r.headers["transfer-encoding"] ?? null,
    vary: r.headers["vary"] ?? null,
    etag: r.headers["etag"] ?? null,
    wireBytes: r.wireBytes,
  };
}

async function stepServing(): Promise<void> {
  await prepServing();
  const { ns, mount } = prepared.serving!;
  log("serving: sidecar on web1000 and the bare server with its bytes");
  const sc = await startSidecar({ ...mount.env, KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "web1000" });
  const snap = await snapshot(sc.url);
  const endpoints = countAddresses(snap.body);
  if (endpoints !== 1000) throw new Error(`web1000 in ${ns} serves ${endpoints} addresses`);
  const bare = await startBare(snap.body, snap.headers);
  const etag = snap.headers.ETag!;
  const targets = [
    { name: "sidecar" as const, port: sc.port, pid: sc.proc.pid },
    { name: "bare" as const, port: bare.port, pid: bare.pid },
  ];
  const probes: Record<string, ProbeResult> = {};
  for (const t of targets) {
    probes[`${t.name} plain`] = await probe(t.port, {});
    probes[`${t.name} gzip`] = await probe(t.port, { "Accept-Encoding": "gzip" });
    probes[`${t.name} 304`] = await probe(t.port, { "If-None-Match": etag });
  }
  const variants: { name: ServingRun["variant"]; headers: string[] }[] = [
    { name: "plain", headers: [] },
    { name: "gzip", headers: ["-H", "Accept-Encoding: gzip"] },
    { name: "304", headers: ["-H", `If-None-Match: ${etag}`] },
  ];
  const base = [`-t${WRK_THREADS}`, `-c${WRK_CONNECTIONS}`, "--latency"];
  for (const t of targets) {
    await runWrk([...base, "-d2s", `http://127.0.0.1:${t.port}/endpoints`]); // warm-up
  }
  const runs: ServingRun[] = [];
  for (const v of variants) {
    for (let round_ = 1; round_ <= WRK_ROUNDS; round_++) {
      for (const t of targets) {
        const cpu0 = procCpuMs(t.pid);
        const wrk = await runWrk([
          ...base,
          `-d${WRK_S}s`,
          ...v.headers,
          `http://127.0.0.1:${t.port}/endpoints`,
        ]);
        const cpu = procCpuMs(t.pid) - cpu0;
        runs.push({
          variant: v.name,
          target: t.name,
          round: round_,
          wrk,
          cpuUsPerRequest: round(cpu * 1000 / wrk.requests, 1),
        });
        log(
          `serving ${v.name} ${t.name} #${round_}: ${wrk.requestsPerSec} req/s, p99 ` +
            `${wrk.p99Ms} ms, ${round(cpu * 1000 / wrk.requests, 1)} CPU µs/req` +
            (wrk.errors ? `, ${wrk.errors} errors` : ""),
        );
      }
    }
  }
  results.serving = {
    service: "web1000",
    endpoints,
    bodyBytes: new TextEncoder().encode(snap.body).length,
    durationS: WRK_S,
    rounds: WRK_ROUNDS,
    connections: WRK_CONNECTIONS,
    threads: WRK_THREADS,
    probes,
    runs,
  };
  await bare.stop();
  await sc.proc.stop();
}

/** The label selector that names these Services (as lib/sidecar.ts writes it). */
function selectorOf(names: string[]): string {
  return names.length === 1
    ? `kubernetes.io/service-name=${names[0]}`
    : `kubernetes.io/service-name in (${names.join(",")})`;
}

/** Path and query of a list of the namespace's slices with this label selector. */
function listUrlChars(ns: string, names: string[]): number {
  const q = new URLSearchParams({ limit: "500", resourceVersion: "0" });
  q.set("labelSelector", selectorOf(names));
  return `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?${q}`.length;
}

/**
 * The longest URL Deno's fetch accepts: requests to a local listener with URLs of 65,534 and
 * 65,535 characters (hyper's limit is 65,534 bytes). Returns the error of the longer one.
 */
async function fetchUrlLimit(): Promise<{ okChars: number; failChars: number; error: string }> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  const accept = (async () => {
    for await (const c of l) c.close();
  })();
  const attempt = async (chars: number) => {
    const base = `http://127.0.0.1:${port}/`;
    try {
      await fetch(base + "x".repeat(chars - base.length));
      return "ok";
    } catch (e) {
      return String(e).split("\n")[0]!.slice(0, 40);
    }
  };
  const ok = await attempt(65_534);
  const fail = await attempt(65_535);
  l.close();
  await accept.catch(() => {});
  return {
    okChars: 65_534,
    failChars: 65_535,
    error: `65,534: ${ok.startsWith("TypeError: Invalid URL") ? "refused" : "sent"}; 65,535: ${
      fail.startsWith("TypeError: Invalid URL") ? "refused (" + fail + "…)" : "sent"
    }`,
  };
}

/** The current change index of each watched Service, from /v1/services. */
async function indexes(url: string): Promise<Map<string, number>> {
  const r = await fetch(`${url}/v1/services`, { headers: { "Accept-Encoding": "identity" } });
  const body = await r.json() as { services: { namespace: string; name: string; index: number }[] };
  return new Map(body.services.map((s) => [`${s.namespace}/${s.name}`, s.index]));
}

/**
 * One scale case: time to ready, memory, then CPU time per update: `SCALE_UPDATES` writes, each
 * awaited with a blocking query on the changed Service (so no polling cost is in the figure).
 */
async function scaleCase(
  c: ScaleCase,
  ns: string,
  mount: PodMount,
  env: Record<string, string>,
  args: string[],
  first: string,
  update: (k: number) => Promise<{ service: string }>,
): Promise<ScaleCase> {
  log(`scale: ${c.label} (${c.mode})`);
  const sc = await startSidecar({ ...mount.env, ...env }, args, 60_000);
  if (sc.readyMs === undefined) {
    const lines = sc.proc.logs.filter((l) => l.level === "warn" || l.level === "error");
    c.failure = lines.length
      ? JSON.stringify(lines[0]).slice(0, 800)
      : sc.proc.stderr().slice(0, 800);
    log(`scale: ${c.label}: not ready in 60 s: ${c.failure}`);
    await sc.proc.stop();
    return c;
  }
  c.ready = true;
  c.readyMs = round(sc.readyMs, 1);
  await sleep(1000);
  const atReady = procMemory(sc.proc.pid);
  // /endpoints needs a named Service (404 with --all-services): load the /v1 view of one.
  await load(sc.url, 100, LOAD_CONCURRENCY, `/v1/services/${ns}/${first}`);
  await sleep(IDLE_WAIT_MS);
  c.memory = { atReady, idle: procMemory(sc.proc.pid) };
  const known = await indexes(sc.url);
  const idle0 = procCpuMs(sc.proc.pid);
  await sleep(3000);
  c.idleCpuMsPerS = round((procCpuMs(sc.proc.pid) - idle0) / 3, 2);
  const client = await KeepAliveClient.open(sc.port);
  const watch = new SliceWatch();
  await watch.open(ns, c.services === 1 ? first : undefined);
  await sleep(1000);
  const latencies: number[] = [];
  const sidecarPart: number[] = [];
  const cpu0 = procCpuMs(sc.proc.pid);
  for (let k = 0; k < SCALE_UPDATES; k++) {
    const tWrite = now();
    const { service } = await update(k);
    const key = `${ns}/${service}`;
    const r = await client.get(`/v1/services/${ns}/${service}?index=${known.get(key)}&wait=15s`);
    const index = Number(r.headers["x-discovery-index"]);
    if (index === known.get(key)) throw new Error(`scale: ${key}: no change within 15 s`);
    known.set(key, index);
    latencies.push(r.headAt - tWrite);
    const tEvent = await watch.arrival(index);
    if (tEvent !== undefined) sidecarPart.push(r.headAt - tEvent);
  }
  const cpu = procCpuMs(sc.proc.pid) - cpu0;
  client.close();
  await watch.close();
  c.eventToServed = summarize(sidecarPart);
  c.updates = SCALE_UPDATES;
  c.cpuMsPerUpdate = round(cpu / SCALE_UPDATES, 2);
  c.writeToServed = summarize(latencies);
  log(
    `scale: ${c.label}: ready ${c.readyMs} ms, idle RSS ${c.memory.idle.rssMB} MB, ` +
      `${c.cpuMsPerUpdate} CPU ms/update, write→served p50 ${c.writeToServed.p50} ms, ` +
      `event→served p50 ${c.eventToServed.p50} ms`,
  );
  await sc.proc.stop();
  return c;
}

async function stepScale(): Promise<void> {
  await prepServing();
  await prepScale();
  const cases: ScaleCase[] = [];
  const big = prepared.big!;
  cases.push(
    await scaleCase(
      {
        label: "1 Service, 5,000 endpoints",
        mode: "--service-name=web5000",
        source: "5,000 Pods; the EndpointSlice controller's 50 slices",
        services: 1,
        slices: 50,
        endpoints: 5000,
        selectorChars: selectorOf(["web5000"]).length,
        ready: false,
      },
      big.ns,
      big.mount,
      { KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "web5000" },
      [],
      "web5000",
      async (k) => {
        // Toggle one Pod's readiness: the controller rewrites its slice of 100 endpoints.
        await setPodReady(big.ns, `web5000-${(Math.floor(k / 2) * 97) % 5000}`, k % 2 === 1);
        return { service: "web5000" };
      },
    ),
  );
  const many = prepared.many!;
  const patchMany = async (k: number) => {
    const service = many.names[(k * 17) % many.names.length]!;
    await kubeOk(
      "PATCH",
      `/apis/discovery.k8s.io/v1/namespaces/${many.ns}/endpointslices/${service}-000`,
      {
        contentType: "application/json-patch+json",
        body: [{ op: "replace", path: "/endpoints/0/conditions/ready", value: false }],
      },
    );
    return { service };
  };
  cases.push(
    await scaleCase(
      {
        label: "1,000 Services of 3 endpoints",
        mode: "--service-name=svc-0000,...,svc-0999",
        source: "hand-written slices (one per Service)",
        services: 1000,
        slices: 1000,
        endpoints: 3000,
        selectorChars: selectorOf(many.names).length,
        ready: false,
      },
      many.ns,
      many.mount,
      { KUBERNETES_POD_DISCOVERY_SERVICE_NAME: many.names.join(",") },
      [],
      many.names[0]!,
      patchMany,
    ),
  );
  cases.push(
    await scaleCase(
      {
        label: "1,000 Services of 3 endpoints",
        mode: "--all-services",
        source: "hand-written slices (one per Service)",
        services: 1000,
        slices: 1000,
        endpoints: 3000,
        selectorChars: 0,
        ready: false,
      },
      many.ns,
      many.mount,
      {},
      ["--all-services"],
      many.names[0]!,
      // Other Services than the previous case's, so every write is a change.
      (k) => patchMany(k + SCALE_UPDATES),
    ),
  );
  results.scale = {
    podCreation,
    cases,
    selectorProbes: await selectorProbes(),
    fetchUrlLimit: (await fetchUrlLimit()).error,
  };
}

/** The sidecar's list and watch URLs (API server address included) for these names. */
function requestUrlChars(ns: string, names: string[]): { list: number; watch: number } {
  const list = testCluster().server.length + listUrlChars(ns, names);
  // The watch asks watch=1&allowWatchBookmarks=true&resourceVersion=RV&timeoutSeconds=T instead
  // of limit=500&resourceVersion=0 (lib/reflector.ts): 46 characters more with a 6-digit RV.
  return { list, watch: list + 46 };
}

/** `svc-0000` and made-up names of 63 characters until the list URL is `target` long. */
function namesForUrl(ns: string, target: number): string[] {
  const names = ["svc-0000"];
  for (let i = 0;; i++) {
    const name = `absent-service-${String(i).padStart(48, "0")}`;
    if (requestUrlChars(ns, [...names, name]).list > target) break;
    names.push(name);
  }
  // Each name costs its length and an encoded comma (%2C); a last, shorter name fills the rest.
  const rest = target - requestUrlChars(ns, names).list - 3;
  if (rest >= 1) names.push("z" + "0".repeat(rest - 1));
  return names;
}

/**
 * How the length of the label selector of --service-name limits the sidecar: Deno's fetch
 * refuses URLs of 65,535 characters or more ("Invalid URL"). Three sidecars in the namespace of
 * 1,000 Services, with svc-0000 and made-up names: both URLs under the limit; the list URL under
 * and the watch URL over; both over. For each: ready? does a change of svc-0000 reach it?
 */
async function selectorProbes(): Promise<SelectorProbe[]> {
  const many = prepared.many!;
  const ns = many.ns;
  const out: SelectorProbe[] = [];
  for (const target of [60_000, 65_510, 65_600]) {
    const names = namesForUrl(ns, target);
    const urls = requestUrlChars(ns, names);
    log(`selector probe: ${names.length} names, list URL ${urls.list}, watch URL ${urls.watch}`);
    const sc = await startSidecar(
      { ...many.mount.env, KUBERNETES_POD_DISCOVERY_SERVICE_NAME: names.join(",") },
      [],
      10_000,
    );
    const p: SelectorProbe = {
      names: names.length,
      listUrlChars: urls.list,
      watchUrlChars: urls.watch,
      ready: sc.readyMs !== undefined,
    };
    await sleep(3000);
    const warn = sc.proc.logs.find((l) => l.level === "warn" || l.level === "error");
    if (warn) {
      p.warning = `${warn.msg}: ${String(warn.reason ?? warn.error ?? "").slice(0, 90)}…`;
    }
    if (p.ready) {
      // Flip svc-0000's first endpoint and see whether the sidecar's view follows in 5 s.
      const path = `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/svc-0000-000`;
      const slice = await kubeOk<EndpointSlice>("GET", path);
      const was = slice.endpoints?.[0]?.conditions?.ready !== false;
      const before = (await indexes(sc.url)).get(`${ns}/svc-0000`);
      await kubeOk("PATCH", path, {
        contentType: "application/json-patch+json",
        body: [{ op: "replace", path: "/endpoints/0/conditions/ready", value: !was }],
      });
      const r = await fetch(`${sc.url}/v1/services/${ns}/svc-0000?index=${before}&wait=5s`);
      await r.body?.cancel();
      p.seesChanges = Number(r.headers.get("x-discovery-index")) !== before;
    }
    log(`selector probe: ready ${p.ready}, sees changes ${p.seesChanges}, ${p.warning ?? ""}`);
    out.push(p);
    await sc.proc.stop();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const c = testCluster();
  results.kubernetes = c.version;
  if (steps.has("serving")) {
    if (!hasProgram("wrk")) {
      throw new Error("wrk is not installed: `apt-get update && apt-get install -y wrk`");
    }
    const v = new Deno.Command("wrk", { args: ["-v"], stdout: "piped", stderr: "piped" })
      .outputSync();
    results.machine.wrk = new TextDecoder().decode(v.stdout).split("\n")[0]!.split(
      " Copyright",
    )[0]!;
  }
  const s = await setup();
  if (steps.has("startup")) await stepStartup(s);
  let sc: Sidecar | undefined;
  if (steps.has("memory")) sc = await stepMemory(s);
  if (steps.has("window")) {
    sc ??= await startSidecar(s.env);
    await stepWindow(s, sc);
  }
  await sc?.proc.stop();
  if (steps.has("serving")) await stepServing();
  if (steps.has("scale")) await stepScale();
  if (!results.scale && podCreation.length) results.scale = { podCreation, cases: [] };
  results.durationS = round((now() - started) / 1000, 0);
  const end = gitDescribe();
  if (end !== results.commit) {
    results.notes.push(
      `main.ts or lib/ changed during the run (${results.commit} at the start, ${end} at the ` +
        "end): later steps measured the newer code.",
    );
    results.commit = `${results.commit} → ${end}`;
  }
  results.loadavgEnd = Deno.readTextFileSync("/proc/loadavg").trim();
  const json = JSON.stringify(results, null, 2) + "\n";
  if (partial) {
    console.log(json);
    return;
  }
  const out = new URL("./results/latest.json", import.meta.url).pathname;
  await Deno.mkdir(new URL("./results/", import.meta.url).pathname, { recursive: true });
  await Deno.writeTextFile(out + ".tmp", json);
  await Deno.rename(out + ".tmp", out);
  const doc = `${ROOT}docs/performance.md`;
  await Deno.writeTextFile(doc, renderMarkdown(results));
  log(`wrote ${out} and ${doc} in ${results.durationS} s`);
}

try {
  await main();
} catch (e) {
  // Keep what was measured before the failure.
  console.log(JSON.stringify(results, null, 2));
  throw e;
} finally {
  for (const c of cleanups.reverse()) await c();
}
