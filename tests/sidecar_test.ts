/** The sidecar against the real control plane: seed compatibility and controller-made slices. */
import assert from "node:assert/strict";
import {
  createNamespace,
  createPods,
  createService,
  deletePod,
  listEndpointSlices,
  setPodReady,
  waitForEndpointSlices,
} from "./support/cluster/fixtures.ts";
import { writeKubeconfig } from "./support/cluster/kubeconfig.ts";
import { waitFor } from "./support/cluster/wait.ts";
import { podMount, servedAddresses, type SidecarProcess, spawnSidecar } from "./support/sidecar.ts";
import { LIVE_TEST as T } from "./support/options.ts";

Deno.test(
  "with only the seed's three env vars, /endpoints, /endpoints/last_updated and /health answer as the Go service did",
  T,
  async () => {
    const ns = await createNamespace("seed");
    await createService(ns, "web");
    await createPods(ns, 3, { labels: { app: "web" }, nodeName: "seed-node", prefix: "web" });
    await waitForEndpointSlices(ns, "web", (s) => s.some((x) => (x.endpoints ?? []).length === 3));
    const mount = await podMount(ns);
    const sidecar = await spawnSidecar({
      env: {
        ...mount.env,
        KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "web",
        KUBERNETES_POD_DISCOVERY_NAMESPACE: ns,
        KUBERNETES_POD_DISCOVERY_LISTEN_PORT: "0",
      },
    });
    try {
      await waitFor(async () => (await sidecar.request("/readyz")).status === 200);
      const r = await sidecar.request("/endpoints");
      assert.equal(r.status, 200);
      assert.match(r.headers.get("content-type")!, /^application\/json/);
      const body = r.json();
      assert.equal(body.metadata.name, "web");
      assert.equal(body.metadata.namespace, ns);
      assert.match(body.metadata.resourceVersion, /^\d+$/);
      // What seed users read: subsets.0.addresses.0.ip, and the ports.
      assert.match(body.subsets[0].addresses[0].ip, /^10\.244\.0\.\d+$/);
      assert.equal(body.subsets[0].addresses.length, 3);
      assert.equal(body.subsets[0].addresses[0].nodeName, "seed-node");
      assert.equal(body.subsets[0].addresses[0].targetRef.kind, "Pod");
      assert.deepEqual(body.subsets[0].ports, [{ name: "http", port: 8080, protocol: "TCP" }]);
      assert.equal((await sidecar.request("/endpoints/")).text, r.text);
      const lu = (await sidecar.request("/endpoints/last_updated")).json();
      assert.ok(Date.now() - Date.parse(lu.lastUpdated) < 60_000, lu.lastUpdated);
      const health = await sidecar.request("/health");
      assert.equal(health.status, 200);
      assert.equal(health.text, "ok");
      assert.ok(!sidecar.stderr().includes(mount.token), "the token must never be logged");
      assert.equal(await sidecar.stop(), 0);
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

Deno.test(
  "150 Pods in several controller-made slices are served merged, NotReady Pods in notReadyAddresses and terminating Pods left out, as the Endpoints controller did",
  T,
  async () => {
    const ns = await createNamespace("many");
    await createService(ns, "web");
    const pods = await createPods(ns, 150, {
      labels: { app: "web" },
      nodeName: "many-node",
      prefix: "web",
    });
    const slices = await waitForEndpointSlices(
      ns,
      "web",
      (s) => s.reduce((n, x) => n + (x.endpoints ?? []).length, 0) === 150,
      { timeoutMs: 60_000 },
    );
    assert.ok(slices.length >= 2, `expected several slices, got ${slices.length}`);
    const mount = await podMount(ns);
    const sidecar = await spawnSidecar({
      env: mount.env,
      args: [`--service-name=${ns}/web`],
    });
    try {
      const all = await waitFor(async () => {
        const s = await servedAddresses(sidecar);
        return s.ready.length === 150 && s;
      });
      assert.equal(new Set(all.ready).size, 150, "no endpoint twice");

      // Five Pods turn NotReady, three terminate: each change reaches the sidecar within a
      // second of the controller writing it to the slices.
      for (const p of pods.slice(0, 5)) await setPodReady(ns, p, false);
      for (const p of pods.slice(5, 8)) await deletePod(ns, p);
      await waitForEndpointSlices(ns, "web", (s) => {
        const eps = s.flatMap((x) => x.endpoints ?? []);
        return eps.filter((e) => e.conditions?.ready === false).length === 8;
      }, { timeoutMs: 30_000 });
      const after = await waitFor(async () => {
        const s = await servedAddresses(sidecar);
        return s.notReady.length === 5 && s.ready.length === 142 && s;
      }, { timeoutMs: 1_000, message: "the sidecar to serve the change within a second" });
      assert.deepEqual(after.notReady, (await servedAddresses(sidecar)).notReady);
      const slicesNow = await listEndpointSlices(ns, "web");
      const terminating = slicesNow.flatMap((x) => x.endpoints ?? [])
        .filter((e) => e.conditions?.terminating).map((e) => e.addresses[0]).sort();
      assert.equal(terminating.length, 3);
      for (const ip of terminating) {
        assert.ok(!after.notReady.includes(ip!) && !after.ready.includes(ip!), ip);
      }
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

Deno.test(
  "a Service that does not exist yet is served empty and ready, and filled when it appears",
  T,
  async () => {
    const ns = await createNamespace("later");
    const mount = await podMount(ns);
    const sidecar = await spawnSidecar({ env: mount.env, args: ["--service-name=late"] });
    try {
      await waitFor(async () => (await sidecar.request("/readyz")).status === 200);
      const empty = await sidecar.request("/endpoints");
      assert.equal(empty.status, 200);
      assert.equal(empty.json().subsets, null);
      await createService(ns, "late");
      await createPods(ns, 2, { labels: { app: "late" }, nodeName: "later-node", prefix: "late" });
      await waitFor(async () => (await servedAddresses(sidecar)).ready.length === 2);
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

Deno.test(
  "out of a cluster, --kubeconfig's current context gives the server, token and namespace",
  T,
  async () => {
    const ns = await createNamespace("kubeconfig");
    await createService(ns, "web");
    await createPods(ns, 2, { labels: { app: "web" }, nodeName: "kc-node", prefix: "web" });
    const dir = await Deno.makeTempDir();
    const path = `${dir}/config`;
    await writeKubeconfig(path, { namespace: ns });
    const sidecar = await spawnSidecar({ args: ["--service-name=web", `--kubeconfig=${path}`] });
    try {
      await waitFor(async () => (await servedAddresses(sidecar)).ready.length === 2);
      assert.equal(sidecar.logs.find((l) => l.msg === "started")?.mode, "kubeconfig");
    } finally {
      await sidecar.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "out of a cluster without --kubeconfig, ~/.kube/config is used, and --context picks a context other than its current one",
  T,
  async () => {
    const ns = await createNamespace("context");
    const other = await createNamespace("current");
    await createService(ns, "web");
    await createPods(ns, 2, { labels: { app: "web" }, nodeName: "ctx-node", prefix: "web" });
    const home = await Deno.makeTempDir();
    await Deno.mkdir(`${home}/.kube`);
    const path = `${home}/.kube/config`;
    await writeKubeconfig(path, { namespace: ns });
    // Two contexts: the current one ("decoy") names a namespace without the Service.
    const text = (await Deno.readTextFile(path))
      .replace(
        "contexts:\n",
        "contexts:\n- name: decoy\n  context:\n    cluster: kpd-test\n    user: kpd-test-user\n" +
          `    namespace: ${JSON.stringify(other)}\n`,
      )
      .replace("current-context: kpd-test", "current-context: decoy");
    await Deno.writeTextFile(path, text);
    const env = { HOME: home };
    const namespaceOf = async (s: SidecarProcess) =>
      (await s.request("/endpoints")).json().metadata.namespace;
    try {
      const picked = await spawnSidecar({
        env,
        args: ["--service-name=web", "--context=kpd-test"],
      });
      try {
        await waitFor(async () => (await servedAddresses(picked)).ready.length === 2);
        assert.equal(picked.logs.find((l) => l.msg === "started")?.mode, "kubeconfig");
        assert.equal(await namespaceOf(picked), ns);
      } finally {
        await picked.stop();
      }
      const current = await spawnSidecar({ env, args: ["--service-name=web"] });
      try {
        await waitFor(async () => (await current.request("/readyz")).status === 200);
        assert.equal(await namespaceOf(current), other, "without --context: the current one");
        assert.deepEqual(await servedAddresses(current), { ready: [], notReady: [] });
      } finally {
        await current.stop();
      }
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
);

Deno.test(
  "the probe listener serves /livez, /readyz and the /health/ subtree on every interface and nothing else",
  T,
  async () => {
    const ns = await createNamespace("probes");
    const mount = await podMount(ns);
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    const sidecar = await spawnSidecar({
      env: mount.env,
      args: ["--service-name=web", `--probe-port=${port}`],
    });
    try {
      assert.equal(sidecar.logs.find((l) => l.msg === "started")?.probes, `[::]:${port}`);
      const probe = async (path: string) => {
        const r = await fetch(`http://127.0.0.1:${port}${path}`);
        return { status: r.status, text: await r.text() };
      };
      await waitFor(async () => (await probe("/readyz")).status === 200);
      assert.equal((await probe("/livez")).text, "ok");
      for (const path of ["/health", "/health/", "/health/x"]) {
        assert.equal((await probe(path)).text, "ok", path);
      }
      assert.equal((await probe("/endpoints")).status, 404);
      assert.equal((await probe("/v1/services")).status, 404);
      assert.equal((await sidecar.request("/endpoints")).status, 200, "the API is on its own port");
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);
