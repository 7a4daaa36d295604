/**
 * The shape of bench/results/latest.json, filled by the scenarios (each its own keys), written
 * by bench/run.ts and rendered into docs/performance.md by bench/report.ts.
 *
 * @module
 */
import type { Variant } from "./_processes.ts";
import type { BinaryResident } from "./_resident.ts";
import type { ProcMemory, Summary, WrkResult } from "./util.ts";

export type { Variant };

/** Memory of one process: right after it was ready, and at idle after the load. */
export interface MemorySample {
  atReady: ProcMemory;
  idle: ProcMemory;
  /** At idle: the `deno` binary's resident pages by section (bench/_resident.ts; root only). */
  binary?: BinaryResident;
  /** At idle: the JavaScript heap, used and committed (MB). */
  jsHeap?: { usedMB: number; totalMB: number };
}

/** One start-up run. */
export interface StartupRun {
  /** Process spawn to the first HTTP answer (any status) on /readyz. */
  listenMs: number;
  /** Process spawn to /readyz 200 (first complete list). */
  readyMs: number;
}

/** One process of the memory step. */
export interface MemoryProcess {
  /** Short key: sidecar, bare, bare+icu, bare+watch, bare+icu+watch, kubeconfig. */
  key: string;
  /** What it is, for the report. */
  label: string;
  /** The flags it ran with. */
  variant: Variant;
  sample: MemorySample;
}

/** One wrk run against one target. */
export interface ServingRun {
  kind: "plain" | "gzip" | "304";
  target: "sidecar" | "bare";
  /** The flags the server ran with. */
  variant: Variant;
  round: number;
  wrk: WrkResult;
  /** Server CPU time (user+system, /proc/PID/stat) per request, in µs. */
  cpuUsPerRequest: number;
}

/** What a single raw request showed (to see whether Deno.serve compressed). */
export interface ProbeResult {
  status: number;
  contentEncoding: string | null;
  contentLength: string | null;
  transferEncoding: string | null;
  vary: string | null;
  etag: string | null;
  wireBytes: number;
}

/** A sidecar at scale: time to ready, memory, CPU time per update. */
export interface ScaleCase {
  variant: Variant;
  label: string;
  /** How the sidecar was told what to watch. */
  mode: string;
  /** How the endpoints were made: Pods (the EndpointSlice controller) or hand-written slices. */
  source: string;
  services: number;
  slices: number;
  endpoints: number;
  /** Length of the label selector naming the Services (0: none, --all-services). Whether the
   * sidecar sends it is up to lib/sidecar.ts (it may watch the namespace whole instead). */
  selectorChars: number;
  ready: boolean;
  /** Process spawn to /readyz 200. */
  readyMs?: number;
  /** Process spawn to the first /endpoints 200 (the body is serialized on first use). */
  firstBodyMs?: number;
  memory?: MemorySample;
  updates?: number;
  /** CPU ms of the sidecar per update with no reader of the body (merge, views, listeners, one
   * blocking query answered with no endpoints): goal 4's figure. */
  cpuMsPerUpdate?: number;
  /** CPU ms of the sidecar per update when one blocking query reads the whole /v1 body after
   * each (a full serialization, encoding and socket write per update). */
  cpuMsPerUpdateWholeBody?: number;
  /** CPU ms of the sidecar per second while idle (bookmarks, timers), for comparison. */
  idleCpuMsPerS?: number;
  /** Write (Pod status or slice PATCH) to the blocking query's answer. */
  writeToServed?: Summary;
  /** The slice's MODIFIED event on the bench's own watch to the blocking query's answer. */
  eventToServed?: Summary;
  /** The same, each update awaited by a blocking query that reads the whole body. */
  eventToServedWholeBody?: Summary;
  /** VmHWM after the updates. */
  hwmAfterUpdatesMB?: number;
  /** What the sidecar logged when it did not become ready. */
  failure?: string;
}

/** A sidecar watching made-up Service names whose label selector makes a URL this long. */
export interface SelectorProbe {
  names: number;
  /** Characters of the list URL (API server address included). */
  listUrlChars: number;
  /** Characters of the watch URL (46 more: watch parameters). */
  watchUrlChars: number;
  ready: boolean;
  /** Whether a change to svc-0000 (one of the names) reached the sidecar within 5 s. */
  seesChanges?: boolean;
  /** The first warning the sidecar logged, cut short. */
  warning?: string;
}

/** Creating the Pods of one Service (POST and a status PATCH each). */
export interface PodCreation {
  service: string;
  pods: number;
  concurrency: number;
  /** All Pods written. */
  seconds: number;
  perSecond: number;
  /** Until the Service's slices (read cluster-wide every 0.5 s) held every Pod as ready. */
  slicesReadyS: number;
}

/** One series of propagation measurements. */
export interface Propagation {
  variant: Variant;
  /** What the series is, e.g. "paced, 50 ms apart". */
  label: string;
  service: string;
  endpoints: number;
  changes: number;
  failures: number;
  /** The poller's sleep between requests. */
  pollGapMs: number;
  /** Measured time between two polls (sleep + request): the resolution. */
  pollPeriodMs: number;
  /** The sidecar's CPU use while the changes ran (polls, blocking queries, the changes). */
  sidecarCpuPercent: number;
  /** The sidecar's CPU time per change, polling included. */
  cpuMsPerChange: number;
  /** Pause before each change (0: the next starts once the previous one is served). */
  changeGapMs: number;
  /** setPodReady sent → the API server's answer (the Pod write itself). */
  writeToAck: Summary;
  /** setPodReady sent → /endpoints (polled) serves the new view. */
  writeToServed: Summary;
  /** The API server acknowledged the Pod write → served. */
  ackToServed: Summary;
  /** Pod write → the slice's MODIFIED event on the bench's own watch (the controller's part). */
  writeToEvent: Summary;
  /** MODIFIED event on the bench's own watch → /endpoints (polled) serves it. */
  eventToServed: Summary;
  /** setPodReady sent → a blocking query on /v1/services/{ns}/{name} answers with it. */
  writeToBlocking: Summary;
  /** MODIFIED event on the bench's own watch → the blocking query answers. */
  eventToBlocking: Summary;
  /** MODIFIED events per change (the controller may write the slice more than once). */
  eventsPerChange: number;
}

/** The sidecar's memory through the propagation series (goal 3: churn). */
export interface Churn {
  variant: Variant;
  samples: { when: string; memory: ProcMemory; cpuMs: number }[];
}

/** The kube-apiserver at one moment of the fleet scenario. */
export interface FleetSample {
  /** VmRSS of its process (median over the window). */
  rssMB: number;
  /** go_memstats_heap_inuse_bytes. */
  heapMB: number;
  /** Open namespace-scoped EndpointSlice watches (apiserver_longrunning_requests). */
  openWatches: number;
  /** CPU time over the window / the window. */
  cpuCores: number;
  windowS: number;
  /** Readings (one a second) whose medians the figures above are. */
  readings: number;
  /** GETs of v1 Endpoints per second (apiserver_request_total): the pollers' rate. */
  endpointsGetsPerS: number;
}

/** N clients of one kind (watching, or polling every 5 s) and what they cost the API server. */
export interface FleetLevel {
  mode: "watch" | "poll";
  clients: number;
  /** Of the clients, real sidecars (shipped flags) and lib/reflector.ts instances. */
  sidecars: number;
  reflectors: number;
  workerProcesses: number;
  /** Start of all clients to the last one's first answer. */
  startS: number;
  /** The API server just restarted, with no client; then with the N clients. */
  baseline: FleetSample;
  steady: FleetSample;
  /** Above the baseline, per client. */
  perClient: { rssKB: number; heapKB: number; cpuMsPerS: number };
  changes: number;
  /** Clients that had not seen a change when its wait ended, summed over the changes. */
  missed: number;
  /** Write sent → the last client saw it, and → half of them had, per change. */
  toLast: Summary;
  toMedian: Summary;
  /** Write sent → the mirroring controller's slice write on the bench's own watch. */
  toMirror: Summary;
  /** The API server's CPU time per change, above its steady state over the same time. */
  cpuMsPerChange: number;
}

/** Everything one run measured. */
export interface Results {
  date: string;
  durationS: number;
  command: string;
  kubernetes: string;
  machine: Record<string, string | number>;
  /** The commit of main.ts and lib/ measured ("+dirty" with uncommitted changes). */
  commit: string;
  /** The scenarios run, and when each part was last measured (a run of one updates its part). */
  scenarios: Record<string, { date: string; commit: string; durationS: number }>;
  loadavgEnd?: string;
  startup?: {
    variant: Variant;
    service: string;
    runs: StartupRun[];
    listenMedianMs: number;
    readyMedianMs: number;
  }[];
  memory?: {
    endpoints: number;
    requests: number;
    concurrency: number;
    idleWaitMs: number;
    bodyBytes: number;
    processes: MemoryProcess[];
  };
  /** Two series per variant: changes paced apart, and back to back. */
  propagation?: Propagation[];
  churn?: Churn[];
  apiLoad?: {
    variant: Variant;
    verification: {
      /** Namespace-scoped endpointslices requests by verb with no sidecar running. */
      namespaceScoped: Record<string, number>;
      /** Cluster-scoped endpointslices requests by verb in the same spell. */
      clusterScoped: Record<string, number>;
      /** Single-object endpointslices requests (the controller's writes) in the same spell. */
      resourceScoped: Record<string, number>;
      /** Open watches on endpointslices by scope (apiserver_longrunning_requests). */
      openWatches: Record<string, number>;
      seconds: number;
    };
    windowS: number;
    /** Namespace-scoped endpointslices requests completed in the window, by verb. */
    sidecarRequests: Record<string, number>;
    openWatchesStart: Record<string, number>;
    openWatchesEnd: Record<string, number>;
    changesInWindow: number;
    /** Seconds from the last change of the watched Service to the window's end. */
    quietS: number;
    perHourMeasured: number;
    perHourAnalytical: number;
  };
  serving?: {
    service: string;
    endpoints: number;
    bodyBytes: number;
    durationS: number;
    rounds: number;
    connections: number;
    threads: number;
    probes: Record<string, ProbeResult>;
    runs: ServingRun[];
  };
  scale?: {
    /** Pods created for the big Service: how long the writes took, and until sliced. */
    podCreation: PodCreation[];
    cases: ScaleCase[];
    selectorProbes?: SelectorProbe[];
    /** Whether Deno's fetch sends URLs of 65,534 and 65,535 characters. */
    fetchUrlLimit?: string;
  };
  fleet?: {
    pollPeriodMs: number;
    perWorker: number;
    levels: FleetLevel[];
  };
  /** What bench/fanout.ts printed, as it printed it. */
  fanout?: Record<string, unknown>;
  remoteFlood?: RemoteFlood;
  lifetimes?: Lifetimes;
  notes: string[];
}

/** One variant of scenario `remote_flood` (bench/remote_flood.ts). */
export interface RemoteFloodRun {
  variant: Variant;
  /** Connections opened of each kind. */
  connections: number;
  /** Held by the sidecar, as the client saw it (the caps were out of the way). */
  admitted: { halfOpen: number; idle: number };
  /** VmRSS before the flood, with the half-open ones held, and with both kinds held. */
  idleRssMB: number;
  halfOpenRssMB: number;
  allRssMB: number;
  /** Sockets the sidecar opened per held connection, from /proc/PID/fd. */
  socketsPerHalfOpen: number;
  socketsPerIdle: number;
  /** VmRSS per held connection (KiB). */
  rssKBPerHalfOpen: number;
  rssKBPerIdle: number;
  /** The Pod's own GET /endpoints on 127.0.0.1, back to back: alone, then during the flood. */
  baselineMs: Summary;
  duringMs: Summary;
}

/** Scenario `remote_flood`: what clients outside the Pod cost. */
export interface RemoteFlood {
  /** The example whose sidecar's memory request and limit the figures are set against. */
  example: string;
  requestMB: number;
  limitMB: number;
  /** The default caps: per listener, and per client address. */
  defaultTotal: number;
  defaultPerClient: number;
  /** This kernel's slab object sizes a socket takes (/proc/slabinfo). */
  slabBytes: Record<string, number>;
  /** Kernel memory per held connection (KiB), estimated from the sockets and the slab sizes. */
  kernelKBPerHalfOpen: number;
  kernelKBPerIdle: number;
  runs: RemoteFloodRun[];
}

/** One reading of scenario `lifetimes`: the sidecar's memory after some rounds. */
export interface LifetimesReading {
  /** Rounds so far (one lifetime of each kind a round), after the warm-up. */
  lifetimes: number;
  /** `kpd_js_heap_bytes{kind="used"}` and VmRSS. */
  heapMB: number;
  rssMB: number;
}

/** Scenario `lifetimes` (bench/lifetimes.ts): clients that come and go, the soak. */
export interface Lifetimes {
  /** Rounds run, and rounds between readings. */
  lifetimes: number;
  readEvery: number;
  /** The sidecar's V8 flags (the image's, plus --gc-global). */
  v8Flags: string;
  durationS: number;
  roundsPerS: number;
  /** Growth per 10,000 rounds (MB), from the start to the end reading. */
  heapMBPer10k: number;
  rssMBPer10k: number;
  /** The same from the reading after the first `readEvery` rounds (what is committed once
   * for the working size is then behind). */
  heapMBPer10kAfterFirst: number;
  rssMBPer10kAfterFirst: number;
  /** `kpd_open_watchers` at the end, e.g. "sse 0, blocking 0". */
  openAfter: string;
  /** Before (0), after every `readEvery` rounds, and after a 2 s pause at the end. */
  readings: LifetimesReading[];
}
