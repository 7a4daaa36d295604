/**
 * Streams whose clients never read, from sockets with a small TCP receive window (issue 17 item
 * 12), against the real control plane with the sidecar in the shipped configuration
 * (image/deno-flags.txt: its permissions and the 48 MB V8 heap). What the sidecar keeps for such
 * a stream must not depend on the client's window: every reading stays within docs/api.md's
 * bound, computed from the number of streams alone.
 */
import assert from "node:assert/strict";
import {
  createNamespace,
  createPods,
  createService,
  setPodReady,
} from "./support/cluster/fixtures.ts";
import { createBigServices, patchBigService } from "./support/big_services.ts";
import { waitFor } from "./support/cluster/wait.ts";
import { rssBytes, shippedFlags } from "./support/fanout_load.ts";
import { LIVE_TEST as T } from "./support/options.ts";
import { podMount, spawnSidecar } from "./support/sidecar.ts";
import { type NeverReader, openNeverReader } from "./support/small_window.ts";

const MiB = 1024 * 1024;
const KB = 1000;
const mb = (n: number) => (n / MiB).toFixed(1);

/**
 * docs/api.md's bound on VmRSS: the runtime serving the cache (52 MB; 51.6-54.2 MB measured, so
 * 60 MiB), plus per open stream what Deno's HTTP layer keeps for a streaming response (75 KB),
 * what writing changes to it adds (35-50 MB per 1,000 streams: 50 KB), and the largest event it
 * carries (Deno's channel and hyper's write buffer take a frame whole). Whatever the client's
 * window; a Pod's memory limit is computed from it.
 */
const RUNTIME = 60 * MiB;
const PER_STREAM = 125 * KB;
const bound = (streams: number, largestEvent: number) =>
  RUNTIME + streams * (PER_STREAM + largestEvent);

/** A receive buffer of 4 KiB (the kernel doubles it): a client behind a slow link, or stopped. */
const RCVBUF = 4096;
/** Changes made back to back, in batches with a reading after each: a rollout. */
const BATCHES = 6;

/** What a sidecar serves, and one change to it. */
interface Served {
  /** The sidecar's arguments naming its Services. */
  args: string[];
  /** Makes the `k`-th change. */
  change: (k: number) => Promise<void>;
}

/** Services `web` and `api` of 8 Pods each; a change flips one Pod of `web`'s readiness. */
async function smallServices(ns: string): Promise<Served> {
  await createService(ns, "web");
  await createService(ns, "api");
  const pods = await createPods(ns, 8, { labels: { app: "web" }, nodeName: "window-node" });
  await createPods(ns, 8, {
    labels: { app: "api" },
    nodeName: "window-node",
    prefix: "api",
    start: 8,
  });
  const ready = pods.map(() => true);
  return {
    args: ["--service-name=web,api"],
    change: async (k) => {
      const p = k % pods.length;
      ready[p] = !ready[p];
      await setPodReady(ns, pods[p]!, ready[p]!);
    },
  };
}

/** 600 endpoints per Service: an SSE event of about 125 KB. */
const WINDOW_BIG = 600;

/** Services `big-0` and `big-1` of one 600-endpoint slice each; a change patches one slice. */
async function bigServices(ns: string): Promise<Served> {
  const names = ["big-0", "big-1"];
  await createBigServices(ns, names, WINDOW_BIG);
  return {
    args: [`--service-name=${names.join(",")}`],
    change: async (k) => {
      await patchBigService(ns, names, WINDOW_BIG, k % names.length, k + 1);
    },
  };
}

/** One run: `streams` never-reading streams on `path`, `BATCHES` × `perBatch` changes. */
interface Run {
  label: string;
  /** The largest event's size; events of a few KB are inside {@linkcode PER_STREAM}. */
  largestEvent: number;
  streams: number;
  perBatch: number;
  serve: (ns: string) => Promise<Served>;
  path: (ns: string) => string;
}

/** Opens the run's streams, makes its changes and checks VmRSS against the bound at each step. */
async function neverReaders(run: Run): Promise<void> {
  const { streams } = run;
  const ns = await createNamespace("window");
  const served = await run.serve(ns);
  const mount = await podMount(ns);
  const sidecar = await spawnSidecar({
    env: mount.env,
    args: [...served.args, `--max-watchers=${streams}`],
    denoFlags: await shippedFlags(mount.dir),
  });
  const port = Number(new URL(sidecar.url).port);
  const clients: NeverReader[] = [];
  const readings: string[] = [];
  const check = async (step: string, streams: number) => {
    const rss = await rssBytes(sidecar.pid);
    readings.push(`${step} ${mb(rss)}`);
    assert.ok(
      rss <= bound(streams, run.largestEvent),
      `${run.label}, ${step}: VmRSS ${mb(rss)} MB over the bound for ${streams} streams, ` +
        `${mb(bound(streams, run.largestEvent))} MB (readings: ${readings.join(", ")})`,
    );
  };
  try {
    await waitFor(async () => (await sidecar.request("/readyz")).status === 200);
    await check("ready", 0);
    for (let i = 0; i < streams; i++) {
      clients.push(openNeverReader(port, run.path(ns), RCVBUF));
    }
    await waitFor(async () =>
      new RegExp(`^kpd_open_watchers\\{kind="sse"\\} ${streams}$`, "m")
        .test((await sidecar.request("/metrics")).text), {
      message: `${streams} streams open`,
      timeoutMs: 60_000,
    });
    await check("open", streams);
    for (let b = 1; b <= BATCHES; b++) {
      for (let i = 0; i < run.perBatch; i++) await served.change((b - 1) * run.perBatch + i);
      await check(`+${b * run.perBatch}`, streams);
    }
    // The last changes reach every stream (the controller and the watch take a moment).
    await new Promise((r) => setTimeout(r, 3000));
    await check("settled", streams);
    assert.equal((await sidecar.request("/readyz")).status, 200, "/readyz answers");
    for (const c of clients.splice(0)) c.close();
    await waitFor(
      async () =>
        /^kpd_open_watchers\{kind="sse"\} 0$/m.test((await sidecar.request("/metrics")).text),
      {
        message: "every stream closed",
        timeoutMs: 30_000,
      },
    );
    // What the allocator took for the streams it may keep: the bound of the streams it had.
    await check("closed", streams);
    console.log(
      `window, ${run.label}: VmRSS (MB) ${readings.join(", ")}; bound ${
        mb(bound(streams, run.largestEvent))
      } MB`,
    );
  } finally {
    for (const c of clients) c.close();
    await sidecar.stop();
    await mount.remove();
  }
}

Deno.test(
  "1,000 one-Service streams from 4 KiB receive windows that never read, 150 changes back to back: VmRSS stays within docs/api.md's bound at every step",
  T,
  () =>
    neverReaders({
      label: "one Service",
      largestEvent: 0,
      streams: 1000,
      perBatch: 25,
      serve: smallServices,
      path: (ns) => `/v1/watch/${ns}/web`,
    }),
);

Deno.test(
  "1,000 all-Services streams from 4 KiB receive windows that never read, 150 changes back to back: VmRSS stays within docs/api.md's bound at every step",
  T,
  () =>
    neverReaders({
      label: "all Services",
      largestEvent: 0,
      streams: 1000,
      perBatch: 25,
      serve: smallServices,
      path: () => "/v1/watch",
    }),
);

// 200 streams: the kernel takes up to a few MB per socket on loopback before it pushes back, and
// 125 KB frames would make that gigabytes for 1,000.
Deno.test(
  "200 all-Services streams of 125 KB frames from 4 KiB receive windows that never read, 24 changes: VmRSS stays within docs/api.md's bound at every step",
  T,
  () =>
    neverReaders({
      label: "125 KB frames",
      largestEvent: 125 * KB,
      streams: 200,
      perBatch: 4,
      serve: bigServices,
      path: () => "/v1/watch",
    }),
);
