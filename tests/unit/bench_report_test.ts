import assert from "node:assert/strict";
import { renderReadmeTable } from "../../bench/report.ts";
import { fleetSection } from "../../bench/report_fleet.ts";
import type { FleetLevel, FleetSample, Results } from "../../bench/types.ts";

const summary = (p50: number, p99: number) => ({
  n: 5,
  min: p50,
  p50,
  p90: p99,
  p99,
  max: p99,
  mean: p50,
});

const sample = (o: Partial<FleetSample> = {}): FleetSample => ({
  rssMB: 300,
  heapMB: 150,
  openWatches: 0,
  cpuCores: 0.05,
  windowS: 20,
  readings: 20,
  endpointsGetsPerS: 0,
  ...o,
});

function level(mode: "watch" | "poll", o: Partial<FleetLevel> = {}): FleetLevel {
  return {
    mode,
    clients: 1000,
    sidecars: mode === "watch" ? 4 : 0,
    reflectors: mode === "watch" ? 996 : 0,
    workerProcesses: 4,
    startS: 2,
    baseline: sample(),
    steady: sample(),
    perClient: { rssKB: 0, heapKB: 0, cpuMsPerS: 0 },
    changes: 20,
    missed: 0,
    toLast: summary(200, 230),
    toMedian: summary(130, 190),
    toMirror: summary(20, 40),
    cpuMsPerChange: 50,
    ...o,
  };
}

function results(o: Partial<Results>): Results {
  return {
    date: "2026-11-27T00:00:00.000Z",
    durationS: 1,
    command: "tools/deno task bench",
    kubernetes: "v1.37.2",
    machine: {},
    commit: "abc",
    scenarios: {},
    notes: [],
    ...o,
  };
}

Deno.test("the 10,000-pod arithmetic scales the per-pod cost of 1,000 watchers and pollers linearly", () => {
  const text = fleetSection(results({
    fleet: {
      pollPeriodMs: 5000,
      perWorker: 250,
      levels: [
        level("watch", { perClient: { rssKB: 131, heapKB: 70, cpuMsPerS: 0.02 } }),
        level("poll", {
          perClient: { rssKB: 10, heapKB: 5, cpuMsPerS: 0.2 },
          toLast: summary(4900, 5000),
        }),
      ],
    },
  })).join("\n");
  // 131 kB × 10,000 = 1,310 MB; 0.02 ms/s × 10,000 = 200 ms/s = 0.2 cores; polling 2 cores.
  assert.match(
    text,
    /131 kB VmRSS \(70 kB Go heap\) per watch × 10,000 = 1,310 MB \(700 MB heap\)/,
  );
  assert.match(text, /0\.020 ms\/s per watch × 10,000 = 0\.20 cores/);
  assert.match(text, /polling \(2,000 GET\/s\): 0\.200 ms\/s × 10,000 = 2\.00 cores/);
  // 50 ms for 1,000 deliveries → 500 ms for 10,000.
  assert.match(text, /about 500 ms for 10,000/);
  assert.match(text, /200\.0 \/ 230\.0 ms \(p50 \/ p99\), against 4,900\.0 \/ 5,000\.0 ms/);
});

Deno.test("the README table judges idle memory in the shipped configuration against its own bare server", () => {
  const mem = (rssMB: number, anonMB: number) => ({
    rssMB,
    hwmMB: rssMB,
    anonMB,
    fileMB: 0,
    threads: 1,
  });
  const proc = (key: string, variant: "shipped" | "source", rss: number) => ({
    key,
    label: key,
    variant,
    sample: { atReady: mem(rss, 10), idle: mem(rss, 10) },
  });
  const r = (sidecarShipped: number) =>
    results({
      memory: {
        endpoints: 100,
        requests: 1000,
        concurrency: 4,
        idleWaitMs: 3000,
        bodyBytes: 17000,
        processes: [
          proc("sidecar", "shipped", sidecarShipped),
          proc("bare", "shipped", 40),
          proc("sidecar", "source", 45),
          proc("bare", "source", 50),
        ],
      },
    });
  assert.match(
    renderReadmeTable(r(48)),
    /\| 1\.20× \(source 0\.90×\) \| ≤ 1\.2× \| \*\*met\*\* \|/,
  );
  assert.match(
    renderReadmeTable(r(48.4)),
    /\| 1\.21× \(source 0\.90×\) \| ≤ 1\.2× \| \*\*missed\*\* \|/,
  );
});
