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
 * 60 MiB), plus per open stream what Deno's HTTP layer keeps for a streaming response (75 KB) and
 * what writing changes to it adds (35-50 MB per 1,000 streams: 50 KB). Whatever the client's
 * window; a Pod's memory limit is computed from it.
 */
const RUNTIME = 60 * MiB;
const PER_STREAM = 125 * KB;
const bound = (streams: number) => RUNTIME + streams * PER_STREAM;

const STREAMS = 1000;
/** A receive buffer of 4 KiB (the kernel doubles it): a client behind a slow link, or stopped. */
const RCVBUF = 4096;
/** Changes made back to back, in batches with a reading after each: a rollout. */
const BATCHES = 6;
const PER_BATCH = 25;

/**
 * Opens 1,000 never-reading streams on `path` (given the namespace) to a sidecar of Services
 * `web` and `api` (8 Pods each), changes `web` 150 times and checks VmRSS at every step.
 */
async function neverReaders(label: string, path: (ns: string) => string): Promise<void> {
  const ns = await createNamespace("window");
  await createService(ns, "web");
  await createService(ns, "api");
  const pods = await createPods(ns, 8, { labels: { app: "web" }, nodeName: "window-node" });
  await createPods(ns, 8, {
    labels: { app: "api" },
    nodeName: "window-node",
    prefix: "api",
    start: 8,
  });
  const mount = await podMount(ns);
  const sidecar = await spawnSidecar({
    env: mount.env,
    args: ["--service-name=web,api", `--max-watchers=${STREAMS}`],
    denoFlags: await shippedFlags(mount.dir),
  });
  const port = Number(new URL(sidecar.url).port);
  const clients: NeverReader[] = [];
  const readings: string[] = [];
  const check = async (step: string, streams: number) => {
    const rss = await rssBytes(sidecar.pid);
    readings.push(`${step} ${mb(rss)}`);
    assert.ok(
      rss <= bound(streams),
      `${step}: VmRSS ${mb(rss)} MB over the bound for ${streams} streams, ` +
        `${mb(bound(streams))} MB (readings: ${readings.join(", ")})`,
    );
  };
  try {
    await waitFor(async () => (await sidecar.request("/endpoints/")).status === 200);
    await check("ready", 0);
    for (let i = 0; i < STREAMS; i++) {
      clients.push(openNeverReader(port, path(ns), RCVBUF));
    }
    await waitFor(async () =>
      new RegExp(`^kpd_open_watchers\\{kind="sse"\\} ${STREAMS}$`, "m")
        .test((await sidecar.request("/metrics")).text), {
      message: `${STREAMS} streams open`,
      timeoutMs: 60_000,
    });
    await check("open", STREAMS);
    const ready = pods.map(() => true);
    for (let b = 1; b <= BATCHES; b++) {
      for (let i = 0; i < PER_BATCH; i++) {
        const p = i % pods.length;
        ready[p] = !ready[p];
        await setPodReady(ns, pods[p]!, ready[p]!);
      }
      await check(`+${b * PER_BATCH}`, STREAMS);
    }
    // The last changes reach every stream (the controller and the watch take a moment).
    await new Promise((r) => setTimeout(r, 3000));
    await check("settled", STREAMS);
    assert.equal((await sidecar.request("/endpoints/")).status, 200, "/endpoints/ answers");
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
    await check("closed", STREAMS);
    console.log(
      `window, ${label}: VmRSS (MB) ${readings.join(", ")}; bound ${mb(bound(STREAMS))} MB`,
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
  () => neverReaders("one Service", (ns) => `/v1/watch/${ns}/web`),
);

Deno.test(
  "1,000 all-Services streams from 4 KiB receive windows that never read, 150 changes back to back: VmRSS stays within docs/api.md's bound at every step",
  T,
  () => neverReaders("all Services", () => "/v1/watch"),
);
