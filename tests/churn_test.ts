/**
 * Clients that come and go leave nothing in the real sidecar: in-cluster, with the image's flags
 * (its 48 MB heap cap) plus V8's `--gc-global`, thousands of SSE streams, blocking queries and
 * keep-alive connections (closed cleanly, or cut mid-request) opened and closed, the JS heap
 * (through /metrics) and VmRSS read before, between and after. bench/lifetimes.ts runs the same
 * lifetimes 50,000 times each.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createNamespace, createPods, createService } from "./support/cluster/fixtures.ts";
import { uniqueName } from "./support/cluster/wait.ts";
import { churn, type Reading, soakFlags } from "./support/lifetimes.ts";
import { podMount, spawnSidecar } from "./support/sidecar.ts";
import { LIVE_TEST as T } from "./support/options.ts";

/** Client lifetimes of each kind. */
const CLIENTS = 3_000;
/** Memory is read after each this many lifetimes of each kind. */
const READ_EVERY = 1_000;
/**
 * Heap growth allowed at any reading. With `--gc-global` a reading is close to what is still
 * reachable. Measured: readings within about 1 MB of the start; with the drain listener of
 * lib/sse.ts never removed again (the leak this guards against), 7.5 -> 10.3, 12.6, 14.6,
 * 14.7 MB after 1,000-4,000 streams, and the test fails.
 */
const MAX_HEAP_GROWTH_BYTES = 5 * 1024 * 1024;
/**
 * VmRSS growth allowed after the first READ_EVERY lifetimes, measured from the reading after
 * them: those first ones bring what V8 and Deno's HTTP layer keep committed (heap pages,
 * allocator arenas, connection buffers) to its working size, +5 MB here with no leak, so RSS is
 * flat only from there. Measured: +0.5 MB over the next 2,000; with the drain listener left in
 * place, +6.6 MB.
 */
const MAX_RSS_GROWTH_BYTES = 4 * 1024 * 1024;

const mb = (n: number) => (n / 1e6).toFixed(1);

Deno.test(
  "3,000 SSE streams, blocking queries and keep-alive connections opened and closed leave the sidecar's heap and RSS where they were",
  T,
  async () => {
    const ns = await createNamespace("churn");
    await createService(ns, "web");
    await createPods(ns, 2, { labels: { app: "web" }, nodeName: uniqueName("ch"), prefix: "web" });
    const mount = await podMount(ns);
    const sidecar = await spawnSidecar({
      env: mount.env,
      args: ["--service-name=web", `--max-watchers=${CLIENTS * 2}`],
      denoFlags: await soakFlags(mount.dir),
    });
    const client = Deno.createHttpClient({});
    try {
      const path = `/v1/services/${ns}/web`;
      while ((await sidecar.request(path)).status !== 200) {
        await new Promise((r) => setTimeout(r, 200));
      }
      const index = (await sidecar.request(path)).headers.get("x-discovery-index")!;
      const target = { url: sidecar.url, pid: sidecar.pid, service: `${ns}/web`, index, client };
      const t0 = performance.now();
      const readings = await churn(target, { lifetimes: CLIENTS, readEvery: READ_EVERY });
      const [before, ...rest] = readings as [Reading, ...Reading[]];
      const series = (k: keyof Reading) => rest.map((r) => mb(r[k])).join(", ");
      console.log(
        `churn (${((performance.now() - t0) / 1000).toFixed(0)} s): heap ${
          mb(before.heapBytes)
        } -> ${series("heapBytes")} MB; VmRSS ${mb(before.rssBytes)} -> ${series("rssBytes")} MB`,
      );
      const heapGrowth = Math.max(...rest.map((r) => r.heapBytes)) - before.heapBytes;
      assert.ok(heapGrowth < MAX_HEAP_GROWTH_BYTES, `heap grew ${mb(heapGrowth)} MB`);
      const rssGrowth = Math.max(...rest.map((r) => r.rssBytes)) - rest[0]!.rssBytes;
      assert.ok(
        rssGrowth < MAX_RSS_GROWTH_BYTES,
        `VmRSS grew ${mb(rssGrowth)} MB after the first ${READ_EVERY}`,
      );
      const metrics = (await sidecar.request("/metrics")).text;
      assert.match(metrics, /^kpd_open_watchers\{kind="sse"\} 0$/m);
      // A blocking query whose client left gives its slot back (noticed by the deadline sweep
      // reading the request's signal, which Deno aborts when the connection closes).
      assert.match(metrics, /^kpd_open_watchers\{kind="blocking"\} 0$/m);
    } finally {
      client.close();
      await sidecar.stop();
      await mount.remove();
    }
  },
);
