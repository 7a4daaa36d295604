/**
 * What the real EndpointSlice controller makes, served as README and docs/migrating.md promise:
 * a Service with `publishNotReadyAddresses` lists its not-ready Pods as addresses, and a Service
 * of more than 1,000 endpoints (spread over many slices) is served whole, where the Endpoints
 * controller truncated at 1,000.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  createNamespace,
  createPods,
  createService,
  podIPv4,
  setPodReady,
  waitForEndpointSlices,
} from "./support/cluster/fixtures.ts";
import { waitFor } from "./support/cluster/wait.ts";
import { podMount, servedAddresses, spawnSidecar } from "./support/sidecar.ts";
import { LIVE_TEST as T } from "./support/options.ts";

Deno.test(
  "a Service with publishNotReadyAddresses serves its not-ready Pod among the addresses",
  T,
  async () => {
    const ns = await createNamespace("publish");
    await createService(ns, "web", { publishNotReadyAddresses: true });
    await createPods(ns, 2, { labels: { app: "web" }, nodeName: "publish-node", prefix: "web" });
    await setPodReady(ns, "web-1", false);
    const mount = await podMount(ns);
    const sidecar = await spawnSidecar({ env: mount.env, args: ["--service-name=web"] });
    try {
      // The controller has seen web-1 not ready (its Pod condition) and still published it ready.
      await waitForEndpointSlices(
        ns,
        "web",
        (s) => s.flatMap((x) => x.endpoints ?? []).length === 2,
      );
      await waitFor(async () => (await servedAddresses(sidecar)).ready.length === 2, {
        message: "both Pods among the addresses",
      });
      assert.deepEqual(await servedAddresses(sidecar), {
        ready: [podIPv4(0), podIPv4(1)],
        notReady: [],
      });
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

Deno.test(
  "a Service of 1,001 controller-made endpoints is served whole, from every slice",
  T,
  async () => {
    const ns = await createNamespace("big");
    await createService(ns, "web");
    await createPods(ns, 1001, {
      labels: { app: "web" },
      nodeName: "big-node",
      prefix: "web",
      concurrency: 50,
    });
    await waitForEndpointSlices(
      ns,
      "web",
      (s) => s.flatMap((x) => x.endpoints ?? []).filter((e) => e.conditions?.ready).length === 1001,
      { timeoutMs: 60_000 },
    );
    const mount = await podMount(ns);
    const sidecar = await spawnSidecar({ env: mount.env, args: ["--service-name=web"] });
    try {
      await waitFor(async () => (await servedAddresses(sidecar)).ready.length === 1001, {
        message: "1,001 addresses",
      });
      const want = Array.from({ length: 1001 }, (_, i) => podIPv4(i)).sort();
      assert.deepEqual((await servedAddresses(sidecar)).ready, want);
      const v1 = (await sidecar.request(`/v1/services/${ns}/web`)).json();
      assert.equal(v1.endpoints.length, 1001);
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);
