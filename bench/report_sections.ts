/**
 * The detailed sections of docs/performance.md, one per scenario (the fleet's is in
 * bench/report_fleet.ts), then how to reproduce, the machine and the notes.
 *
 * @module
 */
import { f, memCells, ms, summaryRow } from "./_format.ts";
import { fleetSection } from "./report_fleet.ts";
import { lifetimesSection } from "./report_lifetimes.ts";
import { remoteFloodSection } from "./report_remote.ts";
import type { MemoryProcess, Results } from "./types.ts";

function memorySection(r: Results): string[] {
  const mem = r.memory;
  if (!mem) return [];
  const out = [
    "## Memory (scenario `memory`)",
    "",
    `Each process served GET /endpoints ${mem.requests} times (${mem.concurrency} at a time, the`,
    `same ${f(mem.bodyBytes / 1000, 1)} kB body of ${mem.endpoints} endpoints), then idled`,
    `${mem.idleWaitMs / 1000} s; memory is read from \`/proc/PID/status\`. Each bare server runs`,
    "with the same flags as the sidecar beside it; the bare variants each add one thing the",
    "sidecar does (see `bench/bare_server.ts`). RssFile is the touched pages of the mapped `deno`",
    "binary (code, ICU data); RssAnon is heap (V8 and Rust).",
    "",
    "| process | flags | VmRSS at ready | VmRSS idle | VmHWM | RssAnon | RssFile | vs bare |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const x of mem.processes) {
    const bare = mem.processes.find((p) => p.key === "bare" && p.variant === x.variant);
    const d = bare && x.key !== "bare"
      ? `+${f(x.sample.idle.rssMB - bare.sample.idle.rssMB)} MB`
      : "";
    out.push(
      `| ${x.label} | ${x.variant} | ${f(x.sample.atReady.rssMB)} MB | ${
        memCells(x.sample.idle)
      } | ${d} |`,
    );
  }
  out.push("", ...memoryReading(mem.processes), ...memoryParts(mem.processes));
  return [...out, ""];
}

/** The same idle readings split by where the pages are: the runtime's code and data, the heap. */
function memoryParts(processes: MemoryProcess[]): string[] {
  const rows = processes.filter((p) => p.sample.binary || p.sample.jsHeap);
  if (!rows.length) return [];
  const out = [
    "",
    "Where those idle pages are: the `deno` binary's resident pages by ELF section (from",
    "`/proc/PID/pagemap`, `bench/_resident.ts`: `.text` is the runtime's machine code, more of",
    "which is in memory the more of Deno's native code a process runs; `.rodata` holds V8's",
    "snapshot and ICU's data), and the JavaScript heap (`Deno.memoryUsage()`: the sidecar's",
    "`kpd_js_heap_bytes`, the bare server's `/memory`), which is part of RssAnon.",
    "",
    "| process | flags | `.text` | `.rodata` | rest of the binary | RssAnon | JS heap used / committed |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const x of rows) {
    const b = x.sample.binary, h = x.sample.jsHeap;
    out.push(
      `| ${x.label} | ${x.variant} | ${b ? `${f(b.textMB)} MB` : "–"} | ${
        b ? `${f(b.rodataMB)} MB` : "–"
      } | ${b ? `${f(b.restMB)} MB` : "–"} | ${f(x.sample.idle.anonMB)} MB | ${
        h ? `${f(h.usedMB)} / ${f(h.totalMB)} MB` : "–"
      } |`,
    );
  }
  return out;
}

/** Where the sidecar's memory above the bare server goes, per variant. */
function memoryReading(processes: MemoryProcess[]): string[] {
  const out: string[] = [];
  for (const v of new Set(processes.map((p) => p.variant))) {
    const rss = (key: string) =>
      processes.find((p) => p.key === key && p.variant === v)?.sample.idle.rssMB;
    const [side, bare, icu, watch] = [
      rss("sidecar"),
      rss("bare"),
      rss("bare+icu"),
      rss("bare+watch"),
    ];
    if (side === undefined || bare === undefined || icu === undefined || watch === undefined) {
      continue;
    }
    out.push(
      `- ${v}: the sidecar idles ${
        f(side - bare)
      } MB above the bare server; a list/watch over TLS` +
        ` alone costs +${f(watch - bare)} MB, one \`localeCompare\` (ICU collation) +${
          f(icu - bare)
        }` +
        ` MB; the ${f(side - watch)} MB beyond the bare server with a watch are the sidecar's own` +
        " modules and heap (ICU included, if it collates).",
    );
    const split = partsAbove(processes, v);
    if (split) out.push(split);
    const kubeconfig = rss("kubeconfig");
    if (kubeconfig !== undefined) {
      out.push(
        `- ${v}, kubeconfig mode: idles at ${f(kubeconfig)} MB, ${
          f(kubeconfig - side)
        } MB above in-cluster mode (its kubeconfig loader and the \`yaml\` parser; importing` +
          " `@kubernetes/client-node`, which it used before, cost ~90 MB).",
      );
    }
  }
  return out;
}

/** The sidecar's idle pages above the bare server's, split by where they are. */
function partsAbove(processes: MemoryProcess[], v: string): string | undefined {
  const at = (key: string) => processes.find((p) => p.key === key && p.variant === v)?.sample;
  const [side, bare, watch] = [at("sidecar"), at("bare"), at("bare+watch")];
  if (!side?.binary || !bare?.binary || !side.jsHeap || !bare.jsHeap) return undefined;
  const d = (g: (s: NonNullable<typeof side>) => number) => f(g(side) - g(bare));
  const tls = watch?.binary
    ? `, of which ${f(watch.binary.textMB - bare.binary.textMB)} MB` +
      " the bare server's list/watch over TLS also runs"
    : "";
  return `  Split: runtime code (\`.text\`) +${d((s) => s.binary!.textMB)} MB${tls}; ` +
    `\`.rodata\` +${d((s) => s.binary!.rodataMB)} MB; JS heap committed ` +
    `+${d((s) => s.jsHeap!.totalMB)} MB (used +${d((s) => s.jsHeap!.usedMB)} MB); ` +
    `RssAnon +${d((s) => s.idle.anonMB)} MB in all.`;
}

function servingSection(r: Results): string[] {
  const sv = r.serving;
  if (!sv) return [];
  const out = [
    "## Serving (scenario `serving`)",
    "",
    `wrk, ${sv.threads} thread, ${sv.connections} connections, ${sv.durationS} s per run, ${sv.rounds}`,
    "rounds, the targets alternating within each (after a 2 s warm-up of each), on loopback; the",
    "results table takes the median of the rounds. The bare server returns the very bytes and",
    "headers the sidecar served. Server CPU is utime+stime from `/proc/PID/stat` around each run.",
    "",
    "| kind | target | flags | round | requests/s | p50 | p99 | CPU/request | errors | command |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const x of sv.runs) {
    out.push(
      `| ${x.kind} | ${x.target} | ${x.variant} | ${x.round} | ${f(x.wrk.requestsPerSec, 0)} | ${
        f(x.wrk.p50Ms, 3)
      } ms | ${f(x.wrk.p99Ms, 3)} ms | ${f(x.cpuUsPerRequest, 1)} µs | ${x.wrk.errors} | \`${
        x.wrk.command.replace(/127\.0\.0\.1:\d+/, "127.0.0.1:PORT")
      }\` |`,
    );
  }
  out.push(
    "",
    "What the servers sent to one raw HTTP/1.1 request each (does `Deno.serve` compress?):",
    "",
    "| request | status | Content-Encoding | Content-Length | bytes on the wire | ETag |",
    "| --- | --- | --- | --- | --- | --- |",
  );
  for (const [k, v] of Object.entries(sv.probes)) {
    out.push(
      `| ${k} | ${v.status} | ${v.contentEncoding ?? "none"} | ${v.contentLength ?? "–"} | ${
        f(v.wireBytes, 0)
      } | \`${v.etag ?? ""}\` |`,
    );
  }
  return [...out, ""];
}

function propagationSection(r: Results): string[] {
  const props = r.propagation ?? [];
  if (!props.length) return [];
  const out = [
    "## Propagation and churn (scenario `propagation`)",
    "",
    `Each change toggles the readiness of one Pod of \`${props[0]!.service}\` (${
      props[0]!.endpoints
    }`,
    "endpoints) through its status, as a kubelet would; the EndpointSlice controller rewrites the",
    "slice; the sidecar's watch gets the MODIFIED event. Two series per variant: paced, and back",
    "to back. The end of each interval is seen by a poller of GET /endpoints (If-None-Match, back",
    "to back on one connection: its period is the resolution), and by a blocking query on",
    "/v1/services/{ns}/{name}. The bench's own cluster-scoped watch timestamps each MODIFIED",
    "event: event → served is the sidecar's own part (negative: the sidecar served before the",
    "bench read its own event; both share 2 busy cores).",
    "",
  ];
  for (const p of props) {
    out.push(
      `**${p.variant}, ${p.label}** (${p.changes} changes; poll period ${
        f(p.pollPeriodMs, 3)
      } ms;` +
        ` sidecar CPU ${p.sidecarCpuPercent}% of a core, ${f(p.cpuMsPerChange, 2)} ms per change` +
        ` with the polling; MODIFIED events per change ${p.eventsPerChange}; failures ${p.failures}):`,
      "",
      "| interval | n | min | p50 | p90 | p99 | max | mean |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
      summaryRow("Pod write sent → served (polled /endpoints)", p.writeToServed),
      summaryRow("Pod write sent → API server's answer", p.writeToAck),
      summaryRow(
        "Pod write sent → MODIFIED on own watch (API server + controller)",
        p.writeToEvent,
      ),
      summaryRow("MODIFIED on own watch → served (polled): the sidecar", p.eventToServed),
      summaryRow("Pod write sent → blocking query answers", p.writeToBlocking),
      summaryRow("MODIFIED on own watch → blocking query answers", p.eventToBlocking),
      "",
    );
  }
  out.push(
    "The Go service polls v1 Endpoints every 5 s: a change waits uniformly 0–5 s for the next",
    "poll, 2.5 s on average and 4.95 s at p99, plus the Endpoints controller's own delay.",
    "",
    "The sidecar's memory through the series (the same process, after the same requests as in",
    "the memory scenario and an idle spell):",
    "",
    "| flags | when | VmRSS | VmHWM | RssAnon | RssFile |",
    "| --- | --- | --- | --- | --- | --- |",
    ...(r.churn ?? []).flatMap((c) =>
      c.samples.map((s) => `| ${c.variant} | ${s.when} | ${memCells(s.memory)} |`)
    ),
    "",
  );
  return out;
}

function apiLoadSection(r: Results): string[] {
  const a = r.apiLoad;
  if (!a) return [];
  const v = a.verification;
  const kv = (o: Record<string, number>) =>
    Object.entries(o).map(([k, n]) => `${k} ${n}`).join(", ") || "none";
  return [
    "## Load on the API server (scenario `api_load`)",
    "",
    '`apiserver_request_total{resource="endpointslices"}` and',
    '`apiserver_longrunning_requests{resource="endpointslices"}` from the API server\'s `/metrics`.',
    "A request is counted when it completes, so an open watch shows only in the long-running gauge.",
    "",
    `**Which scope is whose.** While 10 Pods were created with no sidecar running (${v.seconds} s):`,
    `namespace-scoped: ${kv(v.namespaceScoped)}; cluster-scoped: ${kv(v.clusterScoped)} (the`,
    `bench's own reads); single-object: ${kv(v.resourceScoped)} (the controller's writes); open`,
    `watches: ${kv(v.openWatches)}. Namespace-scoped collection reads are the sidecar's alone.`,
    "",
    `**Window.** ${
      f(a.windowS, 0)
    } s with one sidecar (${a.variant}): ${a.changesInWindow} changes`,
    `of its Service, then ${a.quietS} s without any, while the bench made other scenarios' fixtures.`,
    "",
    "| | |",
    "| --- | --- |",
    `| namespace-scoped endpointslices requests completed in the window | ${
      kv(a.sidecarRequests)
    } |`,
    `| open watches at the window's start / end | ${kv(a.openWatchesStart)} / ${
      kv(a.openWatchesEnd)
    } |`,
    `| per hour, measured (completed × 3600 / window) | ${f(a.perHourMeasured, 0)} |`,
    `| per hour, analytical | ${a.perHourAnalytical} |`,
    "| Go service, 5 s polling | 720 GET of v1 Endpoints per hour, whatever changes |",
    "",
    "A window shorter than the watch's timeout cannot see a renewal, so the hourly figure is",
    "analytical: one WATCH per renewal, each asking a random timeout of 300–600 s",
    "(lib/reflector.ts), 450 s on average: 3600 / 450 = 8 per hour (6 to 12), and no LIST while",
    "bookmarks keep the resourceVersion fresh. This counts WATCH requests only.",
    "",
    "**The idle probe.** A `GET /version` after 30 s without a byte on the connection, 15 s to",
    "answer (lib/connection_liveness.ts), so that a dead connection is noticed within 45 s: one",
    "or two between the API server's bookmarks (about every 60 s), 60–120 an hour. Every watch",
    "of a sidecar rides one HTTP/2 connection, whose bytes of any watch prove it alive, so it is",
    "one probe per sidecar, however many watches. `apiserver_request_total` does not count",
    "`/version`; a FlowSchema of the sidecar's own for `GET /version`",
    "(`apiserver_flowcontrol_dispatched_requests_total`) does. 420 s each, one sidecar, nothing",
    "changing (2026-12-05, `tools/probe_count.ts names|selector 420`; noisy, a few",
    "probes either way):",
    "",
    "| sidecar | watches | probes an hour, one per watch (before) | one per connection |",
    "| --- | --- | --- | --- |",
    "| `--service-name`, one namespace | 1 | 86 | 111 |",
    "| `--service-selector`, two namespaces | 4 | 394 | 69 |",
    "",
    "client-go sends an HTTP/2 PING instead, which costs no request; Deno's `fetch` cannot send",
    "one (`node:http2` can, on a connection of its own, not the one under the watches).",
    "",
  ];
}

function scaleSection(r: Results): string[] {
  const sc = r.scale;
  if (!sc) return [];
  const out = [
    "## Scale (scenario `scale`)",
    "",
    "| Service(s) | flags | watched with | slices | start → ready | idle VmRSS | VmHWM after updates | CPU per update, no body read | CPU per update, whole body read | idle CPU | write → served p50 / p99 | event → served p50 / p99 | event → whole body p50 / p99 |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const c of sc.cases) {
    out.push(
      `| ${c.label} | ${c.variant} | \`${c.mode}\` | ${c.slices} | ${
        c.ready
          ? f(c.readyMs, 0) + " ms"
          : "**not ready**: " + (c.failure ?? "").replace(/\|/g, "\\|")
      } | ${f(c.memory?.idle.rssMB)} MB | ${f(c.hwmAfterUpdatesMB)} MB | ${
        f(c.cpuMsPerUpdate, 2)
      } ms | ${f(c.cpuMsPerUpdateWholeBody, 2)} ms | ${f(c.idleCpuMsPerS, 2)} ms/s | ${
        ms(c.writeToServed, "p50")
      } / ${ms(c.writeToServed)} | ${ms(c.eventToServed, "p50")} / ${ms(c.eventToServed)} | ${
        ms(c.eventToServedWholeBody, "p50")
      } / ${ms(c.eventToServedWholeBody)} |`,
    );
  }
  out.push(
    "",
    "Each case: start to /readyz 200; VmRSS after 100 GETs and an idle spell; then updates one",
    "after another (a Pod's readiness for the big Service, a JSON patch of one slice's endpoint",
    "for the small ones, each a different Service), each awaited with a blocking query on the",
    "changed Service, so the CPU time (utime+stime of `/proc/PID/stat`, 10 ms ticks, over all",
    "updates) is the sidecar's whole work per update. Two series of as many updates each: first",
    "with no reader of the body (the blocking query is pinned to a zone no endpoint is in, so it",
    "answers with no endpoints: the update's own cost, goal 4's figure), then with one reader that",
    "receives the whole /v1 body after each update (a full serialization, encoding and write).",
    "",
    ...sc.podCreation.map((c) =>
      `The big Service's ${f(c.pods, 0)} Pods were written in ${f(c.seconds)} s (${
        f(c.perSecond, 0)
      }/s, ` +
      `${c.concurrency} at a time) and sliced by the controller at ${f(c.slicesReadyS)} s.`
    ),
    "",
  );
  if (sc.selectorProbes?.length) {
    out.push(
      "**Long name lists.** Named Services travel as `labelSelector=kubernetes.io/service-name in",
      `(a,b,...)\` in list and watch URLs; Deno's fetch refuses long URLs (${
        sc.fetchUrlLimit ?? "–"
      }).`,
      "Probes with svc-0000 and made-up 63-character names, then a flip of svc-0000:",
      "",
      "| names | list URL | watch URL | ready | the change reached it | first warning |",
      "| --- | --- | --- | --- | --- | --- |",
      ...sc.selectorProbes.map((x) =>
        `| ${x.names} | ${f(x.listUrlChars, 0)} | ${f(x.watchUrlChars, 0)} | ${
          x.ready ? "yes" : "**no**"
        } | ${x.seesChanges === undefined ? "–" : x.seesChanges ? "yes" : "**no**"} | ${
          x.warning ? "`" + x.warning.replace(/\|/g, "\\|") + "`" : ""
        } |`
      ),
      "",
    );
  }
  return out;
}

function startupSection(r: Results): string[] {
  if (!r.startup?.length) return [];
  return [
    "## Start-up (scenario `startup`)",
    "",
    "Process spawn (`deno run main.ts`, in-cluster, Service web100) to the first answer on",
    "/readyz and to /readyz 200, polled every 2 ms:",
    "",
    "| flags | runs | spawn → listening, median | spawn → /readyz 200, median | all runs (ready) |",
    "| --- | --- | --- | --- | --- |",
    ...r.startup.map((s) =>
      `| ${s.variant} | ${s.runs.length} | ${f(s.listenMedianMs)} ms | ${f(s.readyMedianMs)} ms | ${
        s.runs.map((x) => f(x.readyMs, 0)).join(", ")
      } |`
    ),
    "",
  ];
}

function fanoutSection(r: Results): string[] {
  if (!r.fanout) return [];
  return [
    "## Fan-out (scenario `fanout`, bench/fanout.ts)",
    "",
    "```json",
    JSON.stringify(r.fanout, null, 2),
    "```",
    "",
  ];
}

function runSection(r: Results): string[] {
  const m = r.machine;
  return [
    "## How to reproduce",
    "",
    "```sh",
    "apt-get update && apt-get install -y wrk   # once",
    "tools/deno task bench                      # every scenario (builds the control plane first)",
    "tools/deno task bench serving fleet        # some scenarios: only their parts are replaced",
    "tools/deno task bench memory --quick       # small sizes, to a temp dir: checks, not figures",
    "tools/deno task bench --variants=shipped   # only the image's flags",
    "tools/deno run --allow-read --allow-write bench/report.ts   # re-render this file from the JSON",
    "```",
    "",
    "## Machine and run",
    "",
    "| | |",
    "| --- | --- |",
    `| date | ${r.date} |`,
    `| command | \`${r.command}\` |`,
    `| duration | ${r.durationS} s |`,
    `| CPU | ${m.cpu}, ${m.cores} cores |`,
    `| memory | ${m.memoryGiB} GiB |`,
    `| kernel | ${m.kernel} |`,
    `| Deno | ${m.deno} (V8 ${m.v8}) |`,
    `| wrk | ${m.wrk ?? "–"} |`,
    `| sidecar commit | ${r.commit} |`,
    `| Kubernetes | ${r.kubernetes} (etcd, kube-apiserver, kube-controller-manager on 127.0.0.1) |`,
    `| load average at start / end | ${m.loadavg} / ${r.loadavgEnd ?? "–"} |`,
    "",
    "## Notes",
    "",
    ...r.notes.map((n) => `- ${n}`),
    "",
  ];
}

/** Every section, in the order of the scenarios. */
export function sections(r: Results): string[] {
  return [
    ...startupSection(r),
    ...memorySection(r),
    ...apiLoadSection(r),
    ...propagationSection(r),
    ...servingSection(r),
    ...scaleSection(r),
    ...fleetSection(r),
    ...fanoutSection(r),
    ...remoteFloodSection(r),
    ...lifetimesSection(r),
    ...runSection(r),
  ];
}
