/** The /v1 discovery API against the real control plane: modes, filters, change notification. */
import assert from "node:assert/strict";
import { compactEtcd, createProxy, restartAPIServer } from "./support/cluster/faults.ts";
import {
  createNamespace,
  createNode,
  createPods,
  createService,
  deletePod,
  podIPv4,
  podIPv6,
  setPodReady,
  waitForEndpointSlices,
} from "./support/cluster/fixtures.ts";
import { kubeOk, testCluster } from "./support/cluster/http.ts";
import { uniqueName, waitFor } from "./support/cluster/wait.ts";
import { DISCOVERY_RULES, podMount, type SidecarProcess, spawnSidecar } from "./support/sidecar.ts";
import { LIVE_TEST as T } from "./support/options.ts";

const SERVICE_RULES = [...DISCOVERY_RULES, {
  apiGroups: [""],
  resources: ["services"],
  verbs: ["get", "list", "watch"],
}];

/** Namespace-scoped watches of `resource` open at the API server now. */
async function openWatches(resource: string): Promise<number> {
  const text = await (await fetch(`${testCluster().server}/metrics`, {
    headers: { Authorization: `Bearer ${testCluster().adminToken}` },
    client: Deno.createHttpClient({ caCerts: [testCluster().caPem] }),
  })).text();
  let n = 0;
  for (const line of text.split("\n")) {
    if (
      line.startsWith("apiserver_longrunning_requests{") &&
      line.includes(`resource="${resource}"`) &&
      line.includes('scope="namespace"') && line.includes('verb="WATCH"')
    ) n += Number(line.split(" ").pop());
  }
  return n;
}

async function services(sidecar: SidecarProcess): Promise<string[]> {
  const r = await sidecar.request("/v1/services");
  if (r.status !== 200) return [];
  return r.json().services.map((s: { namespace: string; name: string }) =>
    `${s.namespace}/${s.name}`
  );
}

/** Two namespaces: ns1 with Services a (tier=db) and b (tier=web), ns2 with c (tier=db). */
async function twoNamespaces() {
  const ns1 = await createNamespace("modes1");
  const ns2 = await createNamespace("modes2");
  const node = uniqueName("modes-node");
  for (const [ns, name, tier] of [[ns1, "a", "db"], [ns1, "b", "web"], [ns2, "c", "db"]]) {
    await createService(ns!, name!, { labels: { tier: tier! } });
    await createPods(ns!, 2, { labels: { app: name! }, nodeName: node, prefix: name });
    await waitForEndpointSlices(
      ns!,
      name!,
      (s) => s.flatMap((x) => x.endpoints ?? []).length === 2,
    );
  }
  return { ns1, ns2 };
}

Deno.test(
  "names, label-selector and namespace-wide modes serve real Services, with one slice watch per namespace",
  T,
  async () => {
    const { ns1, ns2 } = await twoNamespaces();
    const before = await openWatches("endpointslices");
    const mount = await podMount(ns1, { rules: [] });
    const { grantRole } = await import("./support/cluster/rbac.ts");
    for (const ns of [ns1, ns2]) {
      await grantRole(
        ns,
        { kind: "ServiceAccount", name: mount.serviceAccount, namespace: ns1 },
        SERVICE_RULES,
      );
    }
    const byName = await spawnSidecar({
      env: mount.env,
      // c is named first and sorts last: /endpoints serves the first one named, not the first
      // in any order of the cache (docs/migrating.md, "Services per process").
      args: [`--service-name=${ns2}/c,${ns1}/a,${ns1}/b`],
    });
    try {
      await waitFor(async () => (await services(byName)).length === 3);
      const first = (await byName.request("/endpoints/")).json();
      assert.deepEqual([first.metadata.namespace, first.metadata.name], [ns2, "c"]);
      const one = (await byName.request(`/v1/services/${ns1}/a`)).json();
      assert.equal(one.endpoints.length, 2);
      assert.equal(await openWatches("endpointslices") - before, 2, "one watch per namespace");
    } finally {
      await byName.stop();
    }
    const bySelector = await spawnSidecar({
      env: mount.env,
      args: ["--service-selector=tier=db", `--namespaces=${ns1},${ns2}`],
    });
    try {
      await waitFor(async () => (await services(bySelector)).join() === `${ns1}/a,${ns2}/c`);
      const list = (await bySelector.request("/v1/services")).json();
      assert.deepEqual(list.services[0].endpoints, {
        ready: 2,
        serving: 2,
        terminating: 0,
        total: 2,
      });
      // Labelling b picks it up; it is served without a restart.
      await kubeOk("PATCH", `/api/v1/namespaces/${ns1}/services/b`, {
        body: { metadata: { labels: { tier: "db" } } },
      });
      await waitFor(async () => (await services(bySelector)).length === 3);
      assert.equal((await bySelector.request(`/v1/services/${ns1}/b`)).json().endpoints.length, 2);
      assert.equal(await openWatches("endpointslices") - before, 2);
      assert.equal((await bySelector.request(`/v1/services/${ns2}/nope`)).status, 404);
      assert.equal(
        (await bySelector.request("/endpoints")).status,
        404,
        "/endpoints needs a named Service",
      );
    } finally {
      await bySelector.stop();
    }
    const all = await spawnSidecar({
      env: mount.env,
      args: ["--all-services", `--namespaces=${ns1}`],
    });
    try {
      await waitFor(async () => (await services(all)).join() === `${ns1}/a,${ns1}/b`);
      assert.equal(await openWatches("endpointslices") - before, 1);
      assert.equal(
        (await all.request("/endpoints")).status,
        404,
        "/endpoints needs a named Service",
      );
    } finally {
      await all.stop();
      await mount.remove();
    }
  },
);

Deno.test(
  "filters select by state, family, port, zone and node on a dual-stack Service with terminating endpoints",
  T,
  async () => {
    const ns = await createNamespace("filters");
    const [nodeA, nodeB] = [uniqueName("node-a"), uniqueName("node-b")];
    await createNode(nodeA, { zone: "zone-a" });
    await createNode(nodeB, { zone: "zone-b" });
    await createService(ns, "web", {
      ipFamilies: ["IPv4", "IPv6"],
      ipFamilyPolicy: "RequireDualStack",
      ports: [{ name: "http", port: 80, targetPort: 8080 }],
    });
    const dual = (i: number) => [podIPv4(i), podIPv6(i)];
    await createPods(ns, 2, { labels: { app: "web" }, nodeName: nodeA, prefix: "a", ips: dual });
    await createPods(ns, 2, {
      labels: { app: "web" },
      nodeName: nodeB,
      prefix: "b",
      ips: dual,
      start: 2,
    });
    await setPodReady(ns, "b-3", false);
    await deletePod(ns, "a-1");
    const mount = await podMount(ns);
    const sidecar = await spawnSidecar({
      env: mount.env,
      args: ["--service-name=web", `--node-name=${nodeB}`],
    });
    const ips = async (query: string) => {
      const r = await sidecar.request(`/v1/services/${ns}/web?${query}`);
      assert.equal(r.status, 200, `${query}: ${r.text}`);
      return r.json().endpoints.map((e: { addresses: string[] }) => e.addresses[0]).sort();
    };
    try {
      // Wait for every change: a-1 terminating and b-3 not ready, not only for the counts.
      await waitFor(async () =>
        (await ips("family=IPv4")).length === 2 &&
        (await ips("state=serving&family=IPv4")).length === 3 &&
        (await ips("state=all&family=IPv4")).length === 4
      );
      assert.deepEqual(await ips("family=IPv4"), [podIPv4(0), podIPv4(2)]);
      assert.deepEqual(await ips("family=IPv6"), [podIPv6(0), podIPv6(2)]);
      // /endpoints, the Go service's route, shows the IPv4 family only (README), as the
      // Endpoints controller did: ready a-0 and b-2, not ready b-3, terminating a-1 left out.
      const v1 = (await sidecar.request("/endpoints")).json() as {
        subsets: { addresses?: { ip: string }[]; notReadyAddresses?: { ip: string }[] }[];
      };
      const v1Ips = (k: "addresses" | "notReadyAddresses") =>
        v1.subsets.flatMap((x) => (x[k] ?? []).map((a) => a.ip)).sort();
      assert.deepEqual(v1Ips("addresses"), [podIPv4(0), podIPv4(2)]);
      assert.deepEqual(v1Ips("notReadyAddresses"), [podIPv4(3)]);
      assert.deepEqual(await ips("state=serving&family=IPv4"), [
        podIPv4(0),
        podIPv4(1),
        podIPv4(2),
      ]);
      const term = (await sidecar.request(`/v1/services/${ns}/web?state=all&family=IPv4`)).json()
        .endpoints.find((e: { addresses: string[] }) => e.addresses[0] === podIPv4(1));
      assert.equal(term.terminating, true);
      assert.equal(term.ready, false);
      assert.equal(term.zone, "zone-a");
      assert.equal(term.nodeName, nodeA);
      assert.deepEqual(await ips("family=IPv4&zone=zone-a"), [podIPv4(0)]);
      assert.deepEqual(await ips("family=IPv4&zone=zone-x&zonal=prefer"), [podIPv4(0), podIPv4(2)]);
      assert.deepEqual(await ips("family=IPv4&zone=zone-x&zonal=pin"), []);
      assert.deepEqual(await ips("family=IPv4&node=prefer"), [podIPv4(2)], "own node first");
      const withPort = (await sidecar.request(`/v1/services/${ns}/web?family=IPv6&port=http`))
        .json();
      assert.deepEqual(withPort.targets.sort(), [`[${podIPv6(0)}]:8080`, `[${podIPv6(2)}]:8080`]);
      const text = await sidecar.request(
        `/v1/services/${ns}/web?family=IPv4&format=text&port=8080`,
      );
      assert.equal(text.headers.get("content-type"), "text/plain; charset=utf-8");
      assert.deepEqual(text.text.trim().split("\n").sort(), [
        `${podIPv4(0)}:8080`,
        `${podIPv4(2)}:8080`,
      ]);
      // kube-proxy's fallback: with no ready endpoint, serve the serving (terminating) ones.
      await deletePod(ns, "a-0");
      await deletePod(ns, "b-2");
      await waitFor(async () => (await ips("family=IPv4")).length === 0);
      assert.deepEqual(await ips("family=IPv4&fallback=serving"), [
        podIPv4(0),
        podIPv4(1),
        podIPv4(2),
      ]);
      for (
        const bad of [
          "state=bogus",
          "family=IPv5",
          "zonal=pin",
          "wait=10s",
          "index=abc",
          "index=1&wait=forever",
          "index=1&wait=99999h",
          "colour=blue",
          "port=-1",
        ]
      ) {
        const r = await sidecar.request(`/v1/services/${ns}/web?${bad}`);
        assert.equal(r.status, 400, bad);
        assert.ok(r.json().error.length > 10, bad);
      }
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

/** Reads Server-Sent Events from a streaming response. */
function sseReader(resp: Response) {
  const reader = resp.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  return {
    async next(timeoutMs = 10_000): Promise<{ event?: string; id?: string; data: string }> {
      const deadline = Date.now() + timeoutMs;
      while (true) {
        const end = buf.indexOf("\n\n");
        if (end >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          // Comments (heartbeats) and blocks without data (`retry:`) dispatch nothing.
          if (!block.split("\n").some((l) => l.startsWith("data"))) continue;
          const ev: { event?: string; id?: string; data: string } = { data: "" };
          for (const line of block.split("\n")) {
            const [k, ...rest] = line.split(": ");
            const v = rest.join(": ");
            if (k === "event") ev.event = v;
            else if (k === "id") ev.id = v;
            else if (k === "data") ev.data += v;
          }
          return ev;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error("no SSE event in time");
        let timer: ReturnType<typeof setTimeout> | undefined;
        const r = await Promise.race([
          reader.read(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error("no SSE event in time")), left);
          }),
        ]).finally(() => clearTimeout(timer));
        if (r.done) throw new Error("SSE stream ended");
        buf += r.value;
      }
    },
    cancel: () => reader.cancel(),
  };
}

async function readyCount(sidecar: SidecarProcess, path: string): Promise<number> {
  return (await sidecar.request(path)).json().endpoints.length;
}

Deno.test(
  "ETag/304, blocking queries and SSE with resume notify changes, and a stalled stream slows no one",
  T,
  async () => {
    const ns = await createNamespace("notify");
    await createService(ns, "web");
    const pods = await createPods(ns, 4, {
      labels: { app: "web" },
      nodeName: "notify-node",
      prefix: "web",
    });
    const mount = await podMount(ns);
    const sidecar = await spawnSidecar({ env: mount.env, args: ["--service-name=web"] });
    const path = `/v1/services/${ns}/web`;
    try {
      await waitFor(async () =>
        (await sidecar.request(path)).status === 200 && await readyCount(sidecar, path) === 4
      );
      const first = await sidecar.request(path);
      const etag = first.headers.get("etag")!;
      const index = Number(first.headers.get("x-discovery-index"));
      assert.equal(first.json().index, index);
      assert.ok(first.headers.get("x-discovery-age-seconds") !== null);
      assert.equal(
        (await sidecar.request(path, { headers: { "If-None-Match": etag } })).status,
        304,
      );

      // A blocking query at the current index returns at the end of its wait, unchanged.
      let t = Date.now();
      const idle = await sidecar.request(`${path}?index=${index}&wait=1s`);
      assert.ok(Date.now() - t >= 1000, "waited");
      assert.equal(Number(idle.headers.get("x-discovery-index")), index);
      // An older index answers at once.
      t = Date.now();
      await sidecar.request(`${path}?index=${index - 1}&wait=30s`);
      assert.ok(Date.now() - t < 1000);

      // A blocking query and two SSE streams, one of them never read, see the next change.
      const stalled = await fetch(`${sidecar.url}/v1/watch/${ns}/web`);
      const live = sseReader(await fetch(`${sidecar.url}/v1/watch/${ns}/web`));
      const snap = await live.next();
      assert.equal(snap.event, "snapshot");
      assert.equal(Number(snap.id), index);
      const blocked = sidecar.request(`${path}?index=${index}&wait=60s`);
      t = Date.now();
      await setPodReady(ns, pods[0]!, false);
      const changed = await blocked;
      assert.ok(Date.now() - t < 10_000, "the change, not the 60 s wait, ended the query");
      const newIndex = Number(changed.headers.get("x-discovery-index"));
      assert.ok(newIndex > index);
      assert.equal(changed.json().endpoints.length, 3);
      assert.notEqual(changed.headers.get("etag"), etag);
      const update = await live.next();
      assert.equal(update.event, "update");
      assert.equal(Number(update.id), newIndex);
      assert.equal(JSON.parse(update.data).endpoints.length, 3);

      // Changes arrive in order.
      await setPodReady(ns, pods[1]!, false);
      const u2 = await live.next();
      await setPodReady(ns, pods[1]!, true);
      const u3 = await live.next();
      assert.ok(Number(u2.id) < Number(u3.id));
      assert.deepEqual(
        [JSON.parse(u2.data).endpoints.length, JSON.parse(u3.data).endpoints.length],
        [2, 3],
      );

      // Resume after a disconnect: the change made while away is the first event, no gap.
      await live.cancel();
      await setPodReady(ns, pods[2]!, false);
      await waitFor(async () => await readyCount(sidecar, path) === 2);
      const resumed = sseReader(
        await fetch(`${sidecar.url}/v1/watch/${ns}/web`, { headers: { "Last-Event-ID": u3.id! } }),
      );
      const r1 = await resumed.next();
      assert.equal(r1.event, "update");
      assert.ok(Number(r1.id) > Number(u3.id));
      assert.equal(JSON.parse(r1.data).endpoints.length, 2);
      await resumed.cancel();
      await stalled.body?.cancel();

      const metrics = (await sidecar.request("/metrics")).text;
      assert.match(
        metrics,
        /^kpd_http_requests_total\{route="\/v1\/services\/\{namespace\}\/\{name\}",code="304"\} 1$/m,
      );
      assert.match(
        metrics,
        new RegExp(`^kpd_endpoints\\{namespace="${ns}",service="web",state="ready"\\} 2$`, "m"),
      );
      assert.match(
        metrics,
        /^kpd_watch_starts_total\{namespace="[^"]+",resource="endpointslices.discovery.k8s.io"\} \d+$/m,
      );
      assert.match(metrics, /kpd_http_request_duration_seconds_bucket/);
      const rss = Number(metrics.match(/^process_resident_memory_bytes (\d+)$/m)?.[1]);
      const heap = Number(metrics.match(/^kpd_js_heap_bytes\{kind="used"\} (\d+)$/m)?.[1]);
      assert.ok(rss > 10e6 && heap > 1e6 && heap < rss, `rss ${rss}, heap used ${heap}`);
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

// With streaming lists (the control plane's default) the resume after the restart is a streaming
// list from the last resourceVersion and gets no 410: this test holds a query across that
// resync. The 410 path is faults_test.ts's "after a compaction a watch from the old
// resourceVersion gets 410, and the sidecar relists".
Deno.test(
  "a blocking query survives a dead connection, a compaction and a restart, and returns the change after the resync",
  T,
  async () => {
    const proxy = await createProxy();
    const ns = await createNamespace("relist");
    await createService(ns, "web");
    const pods = await createPods(ns, 2, {
      labels: { app: "web" },
      nodeName: "relist-node",
      prefix: "web",
    });
    const mount = await podMount(ns, { server: proxy.url });
    const sidecar = await spawnSidecar({
      env: mount.env,
      args: ["--service-name=web"],
    });
    const path = `/v1/services/${ns}/web`;
    try {
      await waitFor(async () =>
        (await sidecar.request(path)).status === 200 && await readyCount(sidecar, path) === 2
      );
      const index = Number((await sidecar.request(path)).headers.get("x-discovery-index"));
      const blocked = sidecar.request(`${path}?index=${index}&wait=60s`);
      await proxy.blackhole();
      await setPodReady(ns, pods[0]!, false);
      await compactEtcd();
      await restartAPIServer();
      await proxy.pass();
      const r = await blocked;
      assert.ok(Number(r.headers.get("x-discovery-index")) > index);
      assert.equal(r.json().endpoints.length, 1);
      // The change came through the resync after the dead connection was noticed, not otherwise.
      const broken = sidecar.logs.findIndex((l) =>
        l.msg === "watch broken; resuming" && /connection dead/.test(String(l.reason))
      );
      assert.ok(broken >= 0, JSON.stringify(sidecar.logs));
      const resync = sidecar.logs.findIndex((l, i) => i > broken && l.msg === "relisted");
      assert.ok(resync > broken, JSON.stringify(sidecar.logs));
      assert.ok(
        Number(sidecar.logs[resync]!.resourceVersion) >= Number(r.headers.get("x-discovery-index")),
      );
    } finally {
      await sidecar.stop();
      await mount.remove();
      await proxy.close();
    }
  },
);

Deno.test(
  "a flood of SSE and blocking clients is bounded with 429 and the sidecar stays healthy",
  T,
  async () => {
    const ns = await createNamespace("flood");
    await createService(ns, "web");
    await createPods(ns, 2, { labels: { app: "web" }, nodeName: "flood-node", prefix: "web" });
    const mount = await podMount(ns);
    const sidecar = await spawnSidecar({
      env: mount.env,
      args: ["--service-name=web", "--max-watchers=300"],
    });
    const path = `/v1/services/${ns}/web`;
    const rss = async () =>
      Number(/VmRSS:\s+(\d+)/.exec(await Deno.readTextFile(`/proc/${sidecar.pid}/status`))?.[1]) /
      1024;
    const streams: Response[] = [];
    try {
      await waitFor(async () => (await sidecar.request("/readyz")).status === 200);
      const index = Number((await sidecar.request(path)).headers.get("x-discovery-index"));
      const before = await rss();
      for (let i = 0; i < 200; i++) streams.push(await fetch(`${sidecar.url}/v1/watch/${ns}/web`));
      const blocking = Array.from(
        { length: 100 },
        () => fetch(`${sidecar.url}${path}?index=${index}&wait=30s`),
      );
      await waitFor(async () =>
        /^kpd_open_watchers\{kind="blocking"\} 100$/m.test((await sidecar.request("/metrics")).text)
      );
      const over = await sidecar.request(`/v1/watch/${ns}/web`);
      assert.equal(over.status, 429);
      assert.match(over.json().error, /too many open watches \(300\)/);
      const overBlocking = await sidecar.request(`${path}?index=${index}&wait=30s`);
      assert.equal(overBlocking.status, 429);
      assert.equal((await sidecar.request("/health")).text, "ok");
      assert.equal((await sidecar.request(path)).status, 200);
      const held = await rss();
      console.log(
        `flood: 300 watchers held; sidecar RSS ${before.toFixed(1)} MB -> ${held.toFixed(1)} MB`,
      );
      // docs/api.md: ~75 KB per open SSE stream, ~21 KB per waiting blocking query, so ~17 MB
      // for these 300; twice that bounds it, with room for GC timing.
      const stated = (200 * 75 + 100 * 21) / 1024;
      assert.ok(held - before < 2 * stated, `300 watchers cost ${(held - before).toFixed(1)} MB`);
      for (const s of streams) await s.body?.cancel();
      await setPodReady(ns, "web-0", false);
      for (const b of await Promise.all(blocking)) {
        assert.equal(b.status, 200), await b.body?.cancel();
      }
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

Deno.test(
  "a name list too long for one label selector watches the namespace whole and stays updated",
  T,
  async () => {
    const ns = await createNamespace("longlist");
    await createService(ns, "web");
    await createPods(ns, 1, { labels: { app: "web" }, nodeName: "longlist-node", prefix: "web" });
    await createService(ns, "other");
    await createPods(ns, 1, {
      labels: { app: "other" },
      nodeName: "longlist-node",
      prefix: "other",
    });
    const names = ["web", ...Array.from({ length: 400 }, (_, i) => `absent-service-${i}`)];
    const mount = await podMount(ns);
    const sidecar = await spawnSidecar({
      env: mount.env,
      args: [`--service-name=${names.join(",")}`],
    });
    try {
      await waitFor(async () =>
        (await sidecar.request("/endpoints")).json().subsets?.[0]?.addresses?.length === 1
      );
      await createPods(ns, 1, {
        labels: { app: "web" },
        nodeName: "longlist-node",
        prefix: "web",
        start: 1,
      });
      await waitFor(async () =>
        (await sidecar.request("/endpoints")).json().subsets[0].addresses.length === 2
      );
      assert.equal(
        (await sidecar.request(`/v1/services/${ns}/other`)).status,
        404,
        "not named, not served",
      );
      assert.equal((await services(sidecar)).length, 401);
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

/** Deletes a Service and its EndpointSlices, as the garbage collector would (the test control
 * plane runs no garbage collector). */
async function deleteService(ns: string, name: string): Promise<void> {
  await kubeOk("DELETE", `/api/v1/namespaces/${ns}/services/${name}`);
  await kubeOk(
    "DELETE",
    `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?labelSelector=kubernetes.io/service-name%3D${name}`,
  );
}

/** Records every (route, ETag) → body seen and fails when one ETag shows two bodies, or when a
 * route answers another status than `expected` (a route regressed to 503 would check nothing). */
function etagLedger() {
  const seen = new Map<string, string>();
  return (path: string, r: { status: number; headers: Headers; text: string }, expected = 200) => {
    assert.equal(r.status, expected, `${path}: ${r.text}`);
    if (r.status !== 200) return;
    const tag = `${path} ${r.headers.get("etag")}`;
    const before = seen.get(tag);
    assert.ok(before === undefined || before === r.text, `${tag} named two bodies`);
    seen.set(tag, r.text);
  };
}

Deno.test(
  "a Service deleted in --all-services mode is dropped: listing, metrics, a held blocking query ends with 404 at once",
  T,
  async () => {
    const ns = await createNamespace("removal");
    const node = uniqueName("removal-node");
    for (const name of ["a", "b"]) {
      await createService(ns, name);
      await createPods(ns, 1, { labels: { app: name }, nodeName: node, prefix: name });
    }
    const mount = await podMount(ns);
    const sidecar = await spawnSidecar({ env: mount.env, args: ["--all-services"] });
    const ledger = etagLedger();
    const look = async (bStatus = 200) => {
      ledger("/v1/services", await sidecar.request("/v1/services"));
      ledger(`/v1/services/${ns}/b`, await sidecar.request(`/v1/services/${ns}/b`), bStatus);
    };
    try {
      await waitFor(async () =>
        (await services(sidecar)).join() === `${ns}/a,${ns}/b` &&
        (await readyCount(sidecar, `/v1/services/${ns}/a`)) === 1
      );
      await look();
      // What is not watched: 404 naming what is, at once and every time.
      const elsewhere = await sidecar.request(`/v1/services/not-${ns}/a`);
      assert.equal(elsewhere.status, 404);
      assert.match(
        elsewhere.json().error,
        new RegExp(`not watched; watched: every Service of ${ns}`),
      );
      const typo = await sidecar.request(`/v1/services/${ns}/aa`);
      assert.equal(typo.status, 404);
      assert.match(typo.json().error, /has no EndpointSlices/);

      const index = Number(
        (await sidecar.request(`/v1/services/${ns}/a`)).headers.get("x-discovery-index"),
      );
      const held = sidecar.request(`/v1/services/${ns}/a?index=${index}&wait=120s`);
      const t = Date.now();
      await deleteService(ns, "a");
      const gone = await held;
      assert.equal(gone.status, 404, gone.text);
      assert.match(gone.json().error, /is gone/);
      assert.ok(Number(gone.headers.get("x-discovery-index")) > index);
      assert.ok(Date.now() - t < 60_000, "the removal, not the wait, ended the query");
      assert.deepEqual(await services(sidecar), [`${ns}/b`]);
      await look();
      assert.equal((await sidecar.request(`/v1/services/${ns}/a`)).status, 404);
      const metrics = (await sidecar.request("/metrics")).text;
      assert.doesNotMatch(metrics, new RegExp(`kpd_endpoints\\{namespace="${ns}",service="a"`));
      assert.match(metrics, new RegExp(`kpd_endpoints\\{namespace="${ns}",service="b"`));

      // A swap (c comes, b goes) gives the list a new ETag: one tag never names two bodies.
      await createService(ns, "c");
      await createPods(ns, 1, { labels: { app: "c" }, nodeName: node, prefix: "c" });
      await deleteService(ns, "b");
      await waitFor(async () => (await services(sidecar)).join() === `${ns}/c`);
      await look(404);
      // A relist that changes nothing keeps the list's tag.
      const tag = (await sidecar.request("/v1/services")).headers.get("etag")!;
      assert.equal(
        (await sidecar.request("/v1/services", { headers: { "If-None-Match": tag } })).status,
        304,
      );
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

Deno.test(
  "a Service that leaves the selector is dropped and a blocking query on it ends with 404",
  T,
  async () => {
    const ns = await createNamespace("leaves");
    await createService(ns, "a", { labels: { tier: "db" } });
    await createPods(ns, 1, { labels: { app: "a" }, nodeName: uniqueName("leaves"), prefix: "a" });
    const mount = await podMount(ns, { rules: SERVICE_RULES });
    const sidecar = await spawnSidecar({
      env: mount.env,
      args: ["--service-selector=tier=db", `--namespaces=${ns}`],
    });
    try {
      await waitFor(async () => (await services(sidecar)).join() === `${ns}/a`);
      const index = Number(
        (await sidecar.request(`/v1/services/${ns}/a`)).headers.get("x-discovery-index"),
      );
      const held = sidecar.request(`/v1/services/${ns}/a?index=${index}&wait=120s`);
      await kubeOk("PATCH", `/api/v1/namespaces/${ns}/services/a`, {
        body: { metadata: { labels: { tier: "web" } } },
      });
      const gone = await held;
      assert.equal(gone.status, 404, gone.text);
      assert.match(gone.json().error, /is gone/);
      assert.deepEqual(await services(sidecar), []);
      const r = await sidecar.request(`/v1/services/${ns}/a`);
      assert.equal(r.status, 404);
      assert.match(r.json().error, /not watched; watched: Services of .* with tier=db/);
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

Deno.test(
  "SIGTERM ends a held blocking query and an SSE stream with complete answers, logs only JSON and exits 0",
  T,
  async () => {
    const ns = await createNamespace("shutdown");
    await createService(ns, "web");
    await createPods(ns, 2, { labels: { app: "web" }, nodeName: uniqueName("sd"), prefix: "web" });
    const mount = await podMount(ns);
    const sidecar = await spawnSidecar({ env: mount.env, args: ["--service-name=web"] });
    const path = `/v1/services/${ns}/web`;
    try {
      await waitFor(async () =>
        (await sidecar.request(path)).status === 200 && await readyCount(sidecar, path) === 2
      );
      const index = Number((await sidecar.request(path)).headers.get("x-discovery-index"));
      const held = fetch(`${sidecar.url}${path}?index=${index}&wait=120s`);
      const stream = await fetch(`${sidecar.url}/v1/watch/${ns}/web`);
      const reader = sseReader(stream);
      assert.equal((await reader.next()).event, "snapshot");
      await waitFor(async () =>
        /^kpd_open_watchers\{kind="blocking"\} 1$/m.test((await sidecar.request("/metrics")).text)
      );
      const code = sidecar.stop("SIGTERM");
      const answer = await held;
      assert.equal(answer.status, 200);
      const body = await answer.json();
      assert.equal(body.endpoints.length, 2, "the current state, complete");
      assert.equal(answer.headers.get("x-discovery-index"), String(index));
      // The stream ends cleanly (whatever final event it sends first).
      let ended = false;
      for (let i = 0; i < 5 && !ended; i++) {
        try {
          await reader.next();
        } catch (e) {
          assert.match(String(e), /SSE stream ended/);
          ended = true;
        }
      }
      assert.ok(ended, "the SSE stream ended");
      assert.equal(await code, 0);
      for (const line of sidecar.stderr().split("\n").filter((l) => l.trim() !== "")) {
        assert.doesNotThrow(() => JSON.parse(line), `not JSON: ${line}`);
      }
      assert.ok(sidecar.logs.some((l) => l.msg === "stopped"));
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);
