/**
 * The fleet section of docs/performance.md: what N pods' sidecars cost the kube-apiserver,
 * beside the Go service's polling, and the arithmetic for 10,000 pods.
 *
 * @module
 */
import { f, p50p99 } from "./_format.ts";
import type { FleetLevel, Results } from "./types.ts";

/** The pod count the arithmetic is done for. */
const PODS = 10_000;

function levelRow(l: FleetLevel): string {
  const what = l.mode === "watch"
    ? `${l.sidecars} sidecar(s) + ${
      f(l.reflectors, 0)
    } reflectors in ${l.workerProcesses} process(es)`
    : `${f(l.clients, 0)} pollers in ${l.workerProcesses} process(es)`;
  const cells = [
    l.mode === "watch" ? "watch (sidecar)" : "poll every 5 s (Go)",
    f(l.clients, 0),
    what,
    f(l.steady.openWatches, 0),
    f(l.steady.endpointsGetsPerS, 1),
    `${f(l.steady.rssMB)} (${f(l.baseline.rssMB)}) MB`,
    `${f(l.steady.heapMB)} (${f(l.baseline.heapMB)}) MB`,
    `${f(l.steady.cpuCores, 3)} (${f(l.baseline.cpuCores, 3)})`,
    `${f(l.perClient.rssKB, 0)} kB`,
    `${f(l.perClient.heapKB, 0)} kB`,
    `${f(l.perClient.cpuMsPerS, 3)} ms/s`,
    p50p99(l.toMirror),
    p50p99(l.toMedian),
    p50p99(l.toLast),
    String(l.missed),
    // A poller's change costs nothing beyond its polling: only a watch's change is delivered.
    l.mode === "watch" ? `${f(l.cpuMsPerChange, 1)} ms` : "– (in the polling)",
  ];
  return `| ${cells.join(" | ")} |`;
}

function arithmetic(watch: FleetLevel | undefined, poll: FleetLevel | undefined): string[] {
  if (!watch) return [];
  const n = watch.clients;
  const scale = PODS / 1000;
  const out = [
    `**Arithmetic for ${f(PODS, 0)} pods**, each with its sidecar, from the ${f(n, 0)}-watcher`,
    "level, linear (one API server; a real control plane spreads watches over its replicas):",
    "",
    `- memory: ${f(watch.perClient.rssKB, 0)} kB VmRSS (${
      f(watch.perClient.heapKB, 0)
    } kB Go heap)` +
    ` per watch × ${f(PODS, 0)} = ${f(watch.perClient.rssKB * scale, 0)} MB` +
    ` (${f(watch.perClient.heapKB * scale, 0)} MB heap)` +
    (poll
      ? `; polling: ${f(poll.perClient.rssKB, 0)} kB × ${f(PODS, 0)} = ${
        f(poll.perClient.rssKB * scale, 0)
      } MB.`
      : "."),
    `- CPU at steady state: ${f(watch.perClient.cpuMsPerS, 3)} ms/s per watch × ${f(PODS, 0)} =` +
    ` ${f(watch.perClient.cpuMsPerS * PODS / 1000, 2)} cores` +
    (poll
      ? `; polling (${f(PODS / 5, 0)} GET/s): ${f(poll.perClient.cpuMsPerS, 3)} ms/s × ${
        f(PODS, 0)
      } =` +
        ` ${f(poll.perClient.cpuMsPerS * PODS / 1000, 2)} cores.`
      : "."),
    `- a change of one Service watched by every pod: ${
      f(watch.cpuMsPerChange, 1)
    } ms of API-server` +
    ` CPU for ${f(n, 0)} deliveries, so about ${f(watch.cpuMsPerChange * PODS / n, 0)} ms for` +
    ` ${f(PODS, 0)}; it reached the last of ${f(n, 0)} in ${p50p99(watch.toLast)} (p50 / p99)` +
    (poll ? `, against ${p50p99(poll.toLast)} for the last poller.` : "."),
    `- requests at steady state (not counted by this scenario: its window is shorter than the`,
    "  30 s of silence a probe waits for): one idle probe (`GET /version`) per sidecar per 30 s",
    "  without a byte, 60–120 an hour, and 6–12 WATCH renewals an hour per watch, so" +
    ` ${f(PODS, 0)} × (66–132) / 3600 ≈ 180–370 requests/s` +
    (poll ? `, against ${f(PODS / 5, 0)} GET/s polling ("Load on the API server").` : "."),
    "",
    "A negative figure is within the noise: the clients cost less than the baseline itself varied",
    "(other work shares the 2 cores).",
    "",
  ];
  return out;
}

/** The section, or nothing when the fleet scenario has not run. */
export function fleetSection(r: Results): string[] {
  const fl = r.fleet;
  if (!fl) return [];
  const levels = fl.levels;
  const top = (mode: string) =>
    levels.filter((l) => l.mode === mode).sort((a, b) => b.clients - a.clients)[0];
  return [
    "## What N pods cost your API server (scenario `fleet`)",
    "",
    "Every pod runs its own sidecar, so N pods hold N watches on the Service's EndpointSlices.",
    "N Deno processes do not fit on 2 cores, so a level of N watchers is a few real sidecars",
    "(shipped flags) plus the sidecar's own `Reflector` (lib/reflector.ts: the same list, watch,",
    "bookmarks and timeouts) for the rest, each on its own connection (its own HTTP client), at",
    `most ${fl.perWorker} per process (bench/fleet_worker.ts). Beside them, as many clients GET`,
    `\`/api/v1/namespaces/{ns}/endpoints/{name}\` every ${
      fl.pollPeriodMs / 1000
    } s, each on its own`,
    "connection and at a random phase, as the Go service did. The Service is selector-less with a",
    "hand-written v1 Endpoints object; the EndpointSlice mirroring controller writes the slice the",
    "watchers read, so one write (the first address becomes a new IP) reaches both kinds of",
    "client, the watchers after the mirroring controller (its write, on the bench's own watch, is",
    'the "mirrored slice" column). The kube-apiserver\'s VmRSS and CPU',
    "time come from `/proc` of its process, its Go heap in use and the open watches from its",
    "/metrics, as medians of one reading a second over the window. A Go process keeps memory it",
    "has grown, so the API server is restarted before each level (etcd keeps the data) and",
    "measured with no client first: per client is above that baseline, divided by N. CPU per",
    "change is the API server's CPU while the changes were delivered, above its steady state.",
    "",
    "| clients | N | what ran | open watches | Endpoints GET/s | API server VmRSS (no client) | Go heap (no client) | CPU, cores (no client) | VmRSS per client | heap per client | CPU per client | change → mirrored slice p50 / p99 | change → half of them p50 / p99 | change → last p50 / p99 | missed | API-server CPU per change |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...levels.map(levelRow),
    "",
    ...arithmetic(top("watch"), top("poll")),
  ];
}
