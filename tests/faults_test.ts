/**
 * The sidecar under faults, each in its own test against the real control plane: the last good
 * view is served throughout, and the state that changed meanwhile arrives after recovery.
 */
import assert from "node:assert/strict";
import {
  compactEtcd,
  createProxy,
  restartAPIServer,
  startAPIServer,
  stopAPIServer,
} from "./support/cluster/faults.ts";
import { createNamespace, createPods, createService } from "./support/cluster/fixtures.ts";
import { kube, kubeOk } from "./support/cluster/http.ts";
import { grantRole, mintToken } from "./support/cluster/rbac.ts";
import { waitFor } from "./support/cluster/wait.ts";
import { DISCOVERY_RULES, podMount, type SidecarProcess, spawnSidecar } from "./support/sidecar.ts";
import { LIVE_TEST as T } from "./support/options.ts";

async function readyIPs(sidecar: SidecarProcess): Promise<string[]> {
  const r = await sidecar.request("/endpoints");
  assert.equal(r.status, 200, `/endpoints answered ${r.status}: ${r.text}`);
  return (r.json().subsets ?? []).flatMap((s: { addresses?: { ip: string }[] }) =>
    (s.addresses ?? []).map((a) => a.ip)
  ).sort();
}

/** A namespace with Service "web" of `n` ready Pods, and a sidecar watching it through `server`. */
async function setup(
  prefix: string,
  n: number,
  options: { server?: string; args?: string[] } = {},
) {
  const ns = await createNamespace(prefix);
  await createService(ns, "web");
  await createPods(ns, n, { labels: { app: "web" }, nodeName: `${prefix}-node`, prefix: "web" });
  const mount = await podMount(ns, { server: options.server });
  const sidecar = await spawnSidecar({
    env: mount.env,
    args: ["--service-name=web", "--log-level=debug", ...(options.args ?? [])],
  });
  await waitFor(async () => (await readyIPs(sidecar)).length === n);
  return { ns, mount, sidecar };
}

/** Adds Pod `web-<index>` and returns its IP. */
async function addPod(ns: string, index: number, prefix: string): Promise<string> {
  await createPods(ns, 1, {
    labels: { app: "web" },
    nodeName: `${prefix}-node`,
    prefix: "web",
    start: index,
  });
  const pod = await kubeOk<{ status: { podIP: string } }>(
    "GET",
    `/api/v1/namespaces/${ns}/pods/web-${index}`,
  );
  return pod.status.podIP;
}

Deno.test(
  "while the API server is down the last view is served, and after it returns changes arrive",
  T,
  async () => {
    const { ns, mount, sidecar } = await setup("restart", 3);
    try {
      const before = await readyIPs(sidecar);
      await stopAPIServer();
      try {
        await sidecar.waitLog((l) => l.msg === "backing off", 30_000);
        assert.deepEqual(await readyIPs(sidecar), before, "the last good view is still served");
        assert.equal((await sidecar.request("/readyz")).status, 200);
      } finally {
        await startAPIServer();
      }
      const ip = await addPod(ns, 3, "restart");
      // Within the backoff cap (30 s) plus the controller's own delay.
      await waitFor(async () => (await readyIPs(sidecar)).includes(ip), { timeoutMs: 45_000 });
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

Deno.test(
  "proxy cuts mid-stream never make the served index go backwards, and every change arrives",
  T,
  async () => {
    const proxy = await createProxy();
    const { ns, mount, sidecar } = await setup("replay", 1, { server: proxy.url });
    // Every state the sidecar announces, as SSE ids (the change index), and polled answers.
    const seen: number[] = [];
    const ac = new AbortController();
    const sse = await fetch(`${sidecar.url}/v1/watch/${ns}/web`, { signal: ac.signal });
    // How the stream ended: only our own abort at the end is expected.
    let streamError: unknown;
    const reader = (async () => {
      let buf = "";
      try {
        for await (const chunk of sse.body!.pipeThrough(new TextDecoderStream())) {
          buf += chunk;
          for (const m of buf.matchAll(/^id: ?(\d+)$/gm)) seen.push(Number(m[1]));
          buf = buf.slice(buf.lastIndexOf("\n") + 1);
        }
        if (!ac.signal.aborted) streamError = new Error("the SSE stream ended before the test did");
      } catch (e) {
        if (!ac.signal.aborted) streamError = e;
      }
    })();
    try {
      const ips: string[] = [];
      for (let i = 1; i <= 4; i++) {
        ips.push(await addPod(ns, i, "replay"));
        // Cut while the change is on its way, then again after it arrived.
        await new Promise((r) => setTimeout(r, 150 * i));
        await proxy.cut();
        await waitFor(async () => (await readyIPs(sidecar)).includes(ips.at(-1)!), {
          timeoutMs: 20_000,
        });
        await proxy.cut();
      }
      ac.abort();
      await reader;
      assert.equal(streamError, undefined, `the SSE stream failed: ${streamError}`);
      // The snapshot and at least one event per added Pod: the loop below has something to check.
      assert.ok(seen.length >= 5, `SSE ids seen: ${seen.join(",")}`);
      for (let i = 1; i < seen.length; i++) {
        assert.ok(seen[i] >= seen[i - 1], `index went back: ${seen.slice(0, i + 1).join(",")}`);
      }
      assert.equal((await readyIPs(sidecar)).length, 5);
      console.log(`replay: ${seen.length} SSE events, ids ${seen.join(",")}`);
    } finally {
      ac.abort();
      await reader;
      await sidecar.stop();
      await mount.remove();
      await proxy.close();
    }
  },
);

Deno.test(
  "after an API server outage of 35 s the view is true again within 10 s of its return",
  T,
  async () => {
    const { ns, mount, sidecar } = await setup("outage", 1);
    try {
      await stopAPIServer();
      try {
        await new Promise((r) => setTimeout(r, 35_000));
        assert.equal((await readyIPs(sidecar)).length, 1, "the last good view is served");
        const refusals = sidecar.logs.filter((l) =>
          l.msg === "backing off" && /unreachable/.test(String(l.reason))
        );
        assert.ok(refusals.length >= 1, "the refused connection was seen");
        assert.ok(
          refusals.every((l) => Number(l.delayMs) <= 1_500),
          `retried quickly while refused: ${refusals.map((l) => l.delayMs)}`,
        );
      } finally {
        await startAPIServer();
      }
      const returned = Date.now();
      const ip = await addPod(ns, 1, "outage");
      // The truth: the API server's own EndpointSlice has the new Pod's address.
      await waitFor(async () => {
        const list = await kubeOk<{ items: { endpoints?: { addresses: string[] }[] }[] }>(
          "GET",
          `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
        );
        return list.items.some((s) => s.endpoints?.some((e) => e.addresses.includes(ip)));
      }, { timeoutMs: 30_000 });
      const truth = Date.now();
      await waitFor(async () => (await readyIPs(sidecar)).includes(ip), { timeoutMs: 30_000 });
      const lagS = (Date.now() - truth) / 1000;
      console.log(
        `outage: view true ${lagS.toFixed(1)} s after the API server had the change ` +
          `(${((Date.now() - returned) / 1000).toFixed(1)} s after startAPIServer resolved)`,
      );
      assert.ok(lagS <= 10, `the view came back ${lagS} s after the truth`);
      // While it started, the API server may have denied us (RBAC not loaded): not a missing Role.
      const errors = sidecar.logs.filter((l) => l.level === "error");
      assert.deepEqual(errors, [], "no error-level line through the outage");
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

Deno.test(
  "a flapping watch (reconnects, never heard from) trips --ready-max-staleness; an event heals it",
  T,
  async () => {
    // Where the API server streams lists, a resumed watch starts with a list and is heard from
    // at once; the rule is pinned where it does not: a plain watch resumed from the last
    // resourceVersion gets its headers and is cut before any event.
    await restartAPIServer({ featureGates: "WatchList=false" });
    const proxy = await createProxy();
    const { ns, mount, sidecar } = await setup("flap", 1, {
      server: proxy.url,
      args: ["--ready-max-staleness=5"],
    });
    try {
      assert.equal((await sidecar.request("/readyz")).status, 200);
      // Each reconnect gets its headers, then is cut before the API server says anything.
      const until = Date.now() + 12_000;
      let tripped = false;
      while (Date.now() < until && !tripped) {
        await proxy.cut();
        await new Promise((r) => setTimeout(r, 300));
        tripped = (await sidecar.request("/readyz")).status === 503;
      }
      assert.ok(tripped, "a flapping watch turned /readyz 503");
      assert.ok((await proxy.stats()).accepted >= 2, "it did reconnect meanwhile");
      const ip = await addPod(ns, 1, "flap");
      await waitFor(async () => (await readyIPs(sidecar)).includes(ip), { timeoutMs: 30_000 });
      await waitFor(async () => (await sidecar.request("/readyz")).status === 200);
    } finally {
      await sidecar.stop();
      await mount.remove();
      await proxy.close();
      await restartAPIServer({ featureGates: "" });
    }
  },
);

Deno.test(
  "the sidecar syncs by a streaming list, and by a paginated list where the WatchList gate is off",
  T,
  async () => {
    const { mount, sidecar } = await setup("watchlist", 2);
    try {
      const synced = await sidecar.waitLog((l) => l.msg === "synced");
      assert.equal(synced.via, "streaming list");
    } finally {
      await sidecar.stop();
    }
    await restartAPIServer({ featureGates: "WatchList=false" });
    try {
      const off = await spawnSidecar({ env: mount.env, args: ["--service-name=web"] });
      try {
        const refused = await off.waitLog((l) =>
          l.msg === "streaming list not offered; listing in pages"
        );
        assert.match(String(refused.reason), /WatchList/);
        const synced = await off.waitLog((l) => l.msg === "synced");
        assert.equal(synced.via, "list");
        await waitFor(async () => (await readyIPs(off)).length === 2);
      } finally {
        await off.stop();
      }
    } finally {
      await restartAPIServer({ featureGates: "" });
      await mount.remove();
    }
  },
);

Deno.test(
  "connections cut by the proxy (RST) are re-established and the change made meanwhile arrives",
  T,
  async () => {
    const proxy = await createProxy();
    const { ns, mount, sidecar } = await setup("cut", 2, { server: proxy.url });
    try {
      const before = await readyIPs(sidecar);
      assert.ok(await proxy.cut() >= 1, "the sidecar's watch was open through the proxy");
      assert.deepEqual(await readyIPs(sidecar), before, "the last good view is served");
      const ip = await addPod(ns, 2, "cut");
      await waitFor(async () => (await readyIPs(sidecar)).includes(ip), { timeoutMs: 15_000 });
      // A watch cut mid-stream is resumed at once (client-go's watch loop), not backed off.
      await sidecar.waitLog((l) => l.msg === "watch broken; resuming");
      const stats = await proxy.stats();
      assert.ok(stats.accepted >= 2, "the sidecar reconnected");
    } finally {
      await sidecar.stop();
      await mount.remove();
      await proxy.close();
    }
  },
);

Deno.test(
  "a black-holed watch (no bytes, no RST) is noticed within 45 s with default settings, and the view catches up",
  T,
  async () => {
    const proxy = await createProxy();
    const { ns, mount, sidecar } = await setup("blackhole", 2, { server: proxy.url });
    try {
      const before = await readyIPs(sidecar);
      await proxy.blackhole();
      const start = Date.now();
      const ip = await addPod(ns, 2, "blackhole");
      // The dead watch is dropped and watched again at once (into the black hole too, here).
      const line = await sidecar.waitLog(
        (l) => l.msg === "watch broken; resuming" && /connection dead/.test(String(l.reason)),
        70_000,
      );
      const noticedS = (Date.now() - start) / 1000;
      console.log(`black hole noticed after ${noticedS.toFixed(1)} s`);
      // client-go: ReadIdleTimeout 30 s + PingTimeout 15 s; a little slack for a busy machine.
      assert.ok(noticedS <= 50, `noticed after ${noticedS} s: ${JSON.stringify(line)}`);
      assert.deepEqual(await readyIPs(sidecar), before, "the last good view is served");
      await proxy.pass();
      await waitFor(async () => (await readyIPs(sidecar)).includes(ip), { timeoutMs: 40_000 });
    } finally {
      await sidecar.stop();
      await mount.remove();
      await proxy.close();
    }
  },
);

Deno.test(
  "a quiet healthy watch with the lowest idle timeout is never backed off and stays ready",
  T,
  async () => {
    const { mount, sidecar } = await setup("quiet", 1, {
      args: ["--watch-idle-timeout=60", "--ready-max-staleness=20"],
    });
    try {
      // Nothing changes in the namespace for 75 s: probes at 30 s and 60 s, an idle restart
      // at 60 s at the latest, and readiness checked all along.
      const until = Date.now() + 75_000;
      while (Date.now() < until) {
        const r = await sidecar.request("/readyz");
        assert.equal(r.status, 200, `ready all along: ${r.text} ${JSON.stringify(sidecar.logs)}`);
        await new Promise((r) => setTimeout(r, 2_000));
      }
      const bad = sidecar.logs.filter((l) => l.msg === "backing off" || l.level === "warn");
      assert.deepEqual(bad, [], "no failure, no backoff, no warning");
      const restarts = sidecar.logs.filter((l) => l.msg === "restarting a quiet watch").length;
      console.log(`quiet watch: ${restarts} quiet restart(s) in 75 s`);
      // Silence is counted from the last byte (a bookmark counts), so a restart comes 60 s after
      // one at the soonest: at most one in 75 s. More means restarts in a loop.
      assert.ok(restarts <= 1, `${restarts} quiet restarts in 75 s with a 60 s idle timeout`);
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

Deno.test(
  "after a compaction a watch from the old resourceVersion gets 410, and the sidecar relists",
  T,
  async () => {
    // An API server without streaming lists: a watch that breaks is then resumed by a plain
    // watch from its resourceVersion, which gets 410 once that is compacted away. (Where lists
    // stream, a broken watch resumes by a streaming list of the state "not older than" its
    // resourceVersion, which gets no 410: the history checker covers that path.)
    await restartAPIServer({ featureGates: "WatchList=false" });
    const proxy = await createProxy();
    const { ns, mount, sidecar } = await setup("gone", 2, { server: proxy.url });
    try {
      // Keep the sidecar away while the history it would resume from is compacted away.
      await proxy.blackhole();
      const ip = await addPod(ns, 2, "gone");
      await compactEtcd();
      await restartAPIServer();
      await proxy.pass();
      // The dead connection is noticed by the probe (<= 45 s after the last byte).
      const relist = await sidecar.waitLog((l) => l.msg === "relisting", 75_000);
      assert.match(String(relist.reason), /410/);
      await sidecar.waitLog((l) => l.msg === "relisted");
      await waitFor(async () => (await readyIPs(sidecar)).includes(ip));
    } finally {
      await sidecar.stop();
      await mount.remove();
      await proxy.close();
      await restartAPIServer({ featureGates: "" });
    }
  },
);

Deno.test(
  "a rotated token file is re-read after the old token gets 401, and the watch recovers",
  T,
  async () => {
    const proxy = await createProxy();
    const { ns, mount, sidecar } = await setup("token", 2, { server: proxy.url });
    try {
      // Invalidate the old token: bound tokens die with their ServiceAccount.
      await kubeOk("DELETE", `/api/v1/namespaces/${ns}/serviceaccounts/${mount.serviceAccount}`);
      await kubeOk("POST", `/api/v1/namespaces/${ns}/serviceaccounts`, {
        body: {
          apiVersion: "v1",
          kind: "ServiceAccount",
          metadata: { name: mount.serviceAccount },
        },
      });
      // The API server caches token reviews for a few seconds; wait until the old one is refused.
      await waitFor(
        async () => (await kube("GET", "/api", { token: mount.token })).status === 401,
        {
          timeoutMs: 30_000,
        },
      );
      const fresh = await mintToken(ns, mount.serviceAccount);
      await mount.writeToken(fresh);
      await proxy.cut();
      const ip = await addPod(ns, 2, "token");
      await sidecar.waitLog((l) => l.msg === "backing off" && /401/.test(String(l.reason)));
      await sidecar.waitLog((l) => l.msg === "token reloaded");
      await waitFor(async () => (await readyIPs(sidecar)).includes(ip), { timeoutMs: 15_000 });
      const logs = sidecar.stderr();
      assert.ok(!logs.includes(mount.token) && !logs.includes(fresh), "no token in the log");
    } finally {
      await sidecar.stop();
      await mount.remove();
      await proxy.close();
    }
  },
);

Deno.test(
  "without the RBAC rule the log names the missing permission and readiness stays 503 until the Role is added",
  T,
  async () => {
    const ns = await createNamespace("rbac");
    await createService(ns, "web");
    await createPods(ns, 1, { labels: { app: "web" }, nodeName: "rbac-node", prefix: "web" });
    const mount = await podMount(ns, { rules: [] });
    const sidecar = await spawnSidecar({ env: mount.env, args: ["--service-name=web"] });
    try {
      const line = await sidecar.waitLog((l) => l.msg === "backing off");
      assert.equal(line.level, "error");
      assert.match(String(line.reason), /forbidden/);
      assert.match(String(line.reason), /endpointslices/);
      assert.match(String(line.reason), /"list"/);
      assert.match(String(line.reason), new RegExp(`namespace "${ns}"`));
      assert.equal((await sidecar.request("/readyz")).status, 503);
      assert.equal((await sidecar.request("/endpoints")).status, 503);
      await grantRole(ns, { kind: "ServiceAccount", name: mount.serviceAccount }, DISCOVERY_RULES);
      await waitFor(async () => (await sidecar.request("/readyz")).status === 200, {
        timeoutMs: 40_000,
      });
      assert.equal((await readyIPs(sidecar)).length, 1);
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);
