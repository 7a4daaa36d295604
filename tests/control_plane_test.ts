// Tests that the control plane the Kubernetes tests run against is a real one: the pinned
// kube-apiserver release, watches with bookmarks, the EndpointSlice controller, TokenRequest
// and RBAC, 410 Gone after compaction, persistence across restarts, and the fault proxy.
import assert from "node:assert/strict";
import { compactEtcd, createProxy, restartAPIServer } from "./support/cluster/faults.ts";
import {
  createEndpointSlice,
  createNamespace,
  createNode,
  createPod,
  createPods,
  createService,
  deletePod,
  listEndpointSlices,
  podIPv4,
  podIPv6,
  waitForEndpointSlices,
} from "./support/cluster/fixtures.ts";
import {
  createClient,
  kube,
  KubeError,
  kubeFetch,
  kubeOk,
  testCluster,
  userToken,
} from "./support/cluster/http.ts";
import {
  createServiceAccount,
  grantRole,
  mintToken,
  revokeRole,
  whoAmI,
} from "./support/cluster/rbac.ts";
import type { EndpointSlice, KubeList, KubeStatus, Pod } from "./support/cluster/types.ts";
import { uniqueName } from "./support/cluster/wait.ts";
import { openWatch } from "./support/cluster/watch.ts";

const MANAGED_BY = "endpointslice.kubernetes.io/managed-by";
const CONTROLLER = "endpointslice-controller.k8s.io";

function endpointsOf(slices: EndpointSlice[]): NonNullable<EndpointSlice["endpoints"]> {
  return slices.flatMap((s) => s.endpoints ?? []);
}

Deno.test("/version reports the pinned release v1.37.2", async () => {
  const pinned = (await Deno.readTextFile(
    new URL("./control_plane/KUBERNETES_VERSION", import.meta.url),
  )).trim();
  const version = await kubeOk<{ gitVersion: string; major: string; minor: string }>(
    "GET",
    "/version",
  );
  assert.equal(version.gitVersion, pinned);
  assert.equal(`v${version.major}.${version.minor}`, pinned.split(".").slice(0, 2).join("."));
  assert.equal(testCluster().version, pinned);
});

Deno.test("an EndpointSlice created through the API reaches a watch that asked for bookmarks", async () => {
  const ns = await createNamespace("cp-watch");
  const path = `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`;
  const list = await kubeOk<KubeList<EndpointSlice>>("GET", path);
  assert.equal(list.items.length, 0);
  const watch = await openWatch<EndpointSlice>(
    `${path}?allowWatchBookmarks=true&resourceVersion=${list.metadata.resourceVersion}`,
  );
  try {
    const created = await createEndpointSlice(ns, {
      metadata: {
        name: "hand-written",
        labels: { "kubernetes.io/service-name": "web", [MANAGED_BY]: "kpd-test" },
      },
      addressType: "IPv4",
      endpoints: [{ addresses: ["10.244.0.10"], conditions: { ready: true } }],
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    });
    const event = await watch.waitFor((e) => e.type === "ADDED");
    assert.equal(event.object.metadata.name, "hand-written");
    assert.equal(event.object.metadata.resourceVersion, created.metadata.resourceVersion);
    assert.deepEqual(event.object.endpoints?.[0].addresses, ["10.244.0.10"]);
  } finally {
    await watch.close();
  }
});

Deno.test("Pods marked Ready produce EndpointSlices written by the EndpointSlice controller", async () => {
  const ns = await createNamespace("cp-slices");
  const node = uniqueName("cp-node");
  await createNode(node, { zone: "zone-a", region: "region-1" });
  await createService(ns, "web", {
    ports: [{ name: "http", port: 80, targetPort: "http" }],
  });
  const containerPorts = [{ name: "http", containerPort: 8080 }];
  const labels = { app: "web" };
  await createPod(ns, "ready-1", { labels, nodeName: node, ips: ["10.244.1.1"], containerPorts });
  await createPod(ns, "ready-2", { labels, nodeName: node, ips: ["10.244.1.2"], containerPorts });
  await createPod(ns, "unready", {
    labels,
    nodeName: node,
    ips: ["10.244.1.3"],
    ready: false,
    containerPorts,
  });
  await createPod(ns, "other-app", { labels: { app: "other" }, nodeName: node });

  const slices = await waitForEndpointSlices(ns, "web", (s) => endpointsOf(s).length === 3);
  assert.equal(slices.length, 1);
  const [slice] = slices;
  assert.equal(slice.metadata.labels?.[MANAGED_BY], CONTROLLER);
  assert.equal(slice.addressType, "IPv4");
  assert.deepEqual(slice.ports, [{ name: "http", port: 8080, protocol: "TCP" }]);
  const byPod = new Map(endpointsOf(slices).map((e) => [e.targetRef?.name, e]));
  assert.deepEqual([...byPod.keys()].sort(), ["ready-1", "ready-2", "unready"]);
  assert.deepEqual(byPod.get("ready-1")?.addresses, ["10.244.1.1"]);
  assert.equal(byPod.get("ready-1")?.conditions?.ready, true);
  assert.equal(byPod.get("ready-1")?.nodeName, node);
  assert.equal(byPod.get("ready-1")?.zone, "zone-a");
  assert.equal(byPod.get("unready")?.conditions?.ready, false);

  // A graceful delete leaves the Pod terminating (no kubelet finishes it): its endpoint stays,
  // serving but not ready.
  await deletePod(ns, "ready-2");
  const after = await waitForEndpointSlices(
    ns,
    "web",
    (s) => endpointsOf(s).some((e) => e.targetRef?.name === "ready-2" && e.conditions?.terminating),
  );
  const terminating = endpointsOf(after).find((e) => e.targetRef?.name === "ready-2");
  assert.deepEqual(terminating?.conditions, { ready: false, serving: true, terminating: true });
  const pod = await kubeOk<Pod>("GET", `/api/v1/namespaces/${ns}/pods/ready-2`);
  assert.ok(pod.metadata.deletionTimestamp, "the Pod is still there, terminating");
});

Deno.test("150 Pods give at least 2 controller-written EndpointSlices of at most 100 endpoints each", async () => {
  const ns = await createNamespace("cp-many");
  const node = uniqueName("cp-node");
  await createService(ns, "big");
  await createPods(ns, 150, { labels: { app: "big" }, nodeName: node, prefix: "big" });
  const slices = await waitForEndpointSlices(
    ns,
    "big",
    (s) => endpointsOf(s).filter((e) => e.conditions?.ready).length === 150,
    { timeoutMs: 60_000 },
  );
  assert.ok(slices.length >= 2, `${slices.length} slices`);
  for (const s of slices) {
    assert.equal(s.metadata.labels?.[MANAGED_BY], CONTROLLER);
    assert.ok((s.endpoints ?? []).length <= 100, `${s.metadata.name}: ${s.endpoints?.length}`);
  }
  const ips = new Set(endpointsOf(slices).flatMap((e) => e.addresses));
  assert.equal(ips.size, 150);
  assert.ok(ips.has(podIPv4(0)) && ips.has(podIPv4(149)));
});

Deno.test("a dual-stack Service gets an IPv4 and an IPv6 cluster IP and one EndpointSlice per family", async () => {
  const ns = await createNamespace("cp-dual");
  const service = await createService(ns, "dual", {
    ipFamilyPolicy: "RequireDualStack",
    ipFamilies: ["IPv4", "IPv6"],
  });
  assert.equal(service.spec.clusterIPs?.length, 2);
  assert.match(service.spec.clusterIPs?.[0] ?? "", /^10\.96\./);
  assert.match(service.spec.clusterIPs?.[1] ?? "", /^fd00:10:96::/);
  await createPods(ns, 2, {
    labels: { app: "dual" },
    nodeName: uniqueName("cp-node"),
    ips: (i) => [podIPv4(i), podIPv6(i)],
  });
  const slices = await waitForEndpointSlices(
    ns,
    "dual",
    (s) => s.length === 2 && s.every((x) => x.endpoints?.length === 2),
  );
  assert.deepEqual(slices.map((s) => s.addressType).sort(), ["IPv4", "IPv6"]);
  const v6 = slices.find((s) => s.addressType === "IPv6");
  assert.deepEqual(v6?.endpoints?.map((e) => e.addresses[0]).sort(), [podIPv6(0), podIPv6(1)]);
});

Deno.test("a TokenRequest token authenticates and RBAC answers 403 for what its Role does not allow", async () => {
  const ns = await createNamespace("cp-rbac");
  const otherNs = await createNamespace("cp-rbac-other");
  await createServiceAccount(ns, "reader", {
    rules: [{
      apiGroups: ["discovery.k8s.io"],
      resources: ["endpointslices"],
      verbs: ["get", "list", "watch"],
    }],
  });
  const token = await mintToken(ns, "reader", { expirationSeconds: 600 });
  assert.equal(token.split(".").length, 3, "a JWT");

  const me = await whoAmI({ token });
  assert.equal(me.username, `system:serviceaccount:${ns}:reader`);
  assert.ok(me.groups.includes(`system:serviceaccounts:${ns}`));

  const allowed = await kube("GET", `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, {
    token,
  });
  assert.equal(allowed.status, 200);
  for (
    const path of [
      `/api/v1/namespaces/${ns}/pods`,
      `/apis/discovery.k8s.io/v1/namespaces/${otherNs}/endpointslices`,
      `/apis/discovery.k8s.io/v1/endpointslices`,
    ]
  ) {
    const denied = await kube<KubeStatus>("GET", path, { token });
    assert.equal(denied.status, 403, path);
    assert.equal(denied.body.reason, "Forbidden");
  }
  const write = await kube("DELETE", `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, {
    token,
  });
  assert.equal(write.status, 403);

  // A token for another audience, or none at all, is not accepted (anonymous auth is off).
  const foreign = await mintToken(ns, "reader", { audiences: ["https://elsewhere.example"] });
  assert.equal((await kube("GET", "/version", { token: foreign })).status, 401);
  assert.equal((await kube("GET", "/version", { token: null })).status, 401);
});

Deno.test("static-token users and the client certificate authenticate as themselves, and grants and revocations take effect", async () => {
  const ns = await createNamespace("cp-users");
  assert.equal((await whoAmI({ token: userToken("alice") })).username, "alice");
  assert.equal((await whoAmI({ token: userToken("bob") })).username, "bob");
  const certClient = createClient({ clientCert: true });
  try {
    assert.equal((await whoAmI({ token: null, client: certClient })).username, "cert-user");
  } finally {
    certClient.close();
  }

  const path = `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`;
  const alice = { token: userToken("alice") };
  assert.equal((await kube("GET", path, alice)).status, 403);
  const role = await grantRole(ns, { kind: "User", name: "alice" }, [{
    apiGroups: ["discovery.k8s.io"],
    resources: ["endpointslices"],
    verbs: ["list"],
  }]);
  assert.equal((await kube("GET", path, alice)).status, 200);
  assert.equal((await kube("GET", path, { token: userToken("bob") })).status, 403);
  await revokeRole(ns, role);
  assert.equal((await kube("GET", path, alice)).status, 403);
});

Deno.test("after an etcd compaction and an API server restart, data survives and an old resourceVersion gets 410", async () => {
  const ns = await createNamespace("cp-restart");
  const cms = `/api/v1/namespaces/${ns}/configmaps`;
  for (const name of ["first", "second", "third"]) {
    await kubeOk("POST", cms, { body: { metadata: { name }, data: { name } } });
  }
  await createService(ns, "kept", { selector: null });
  await createEndpointSlice(ns, {
    metadata: { name: "kept-1", labels: { "kubernetes.io/service-name": "kept" } },
    addressType: "IPv4",
    endpoints: [{ addresses: ["10.244.9.9"] }],
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
  });
  const oldRV = (await kubeOk<KubeList>("GET", cms)).metadata.resourceVersion;
  const page = await kubeOk<KubeList>("GET", `${cms}?limit=1`);
  assert.ok(page.metadata.continue, "a first page with a continue token");
  // Changes after oldRV, so that compaction really drops history a watch from oldRV needs.
  await kubeOk("PATCH", `${cms}/first`, { body: { data: { name: "first", changed: "yes" } } });
  await kubeOk("DELETE", `${cms}/third`);

  const open = await openWatch(`${cms}?resourceVersion=${oldRV}`);
  try {
    const revision = await compactEtcd();
    assert.ok(revision > Number(oldRV), `compacted at ${revision}, after ${oldRV}`);

    await restartAPIServer();

    // A watch that was open across the restart ends or fails; it does not hang: 10 s with no
    // event and no end is a failure, not an ending.
    while (true) {
      const event = await open.next({ timeoutMs: 10_000 }).catch((err: Error) => err);
      if (event instanceof Error && /^timed out after/.test(event.message)) {
        assert.fail(`the watch open across the restart hangs: ${event.message}`);
      }
      if (event === undefined || event instanceof Error) break;
    }
  } finally {
    await open.close();
  }

  // The data survived in etcd.
  const first = await kubeOk<{ data: Record<string, string> }>("GET", `${cms}/first`);
  assert.deepEqual(first.data, { name: "first", changed: "yes" });
  assert.equal((await kube("GET", `${cms}/third`)).status, 404);
  const slices = await listEndpointSlices(ns, "kept");
  assert.deepEqual(slices.map((s) => s.endpoints?.[0].addresses[0]), ["10.244.9.9"]);

  // The continue token of a list is older than the compaction: 410 Gone. (Before the restart,
  // the watch cache still serves it.)
  const cont = await kube<KubeStatus>(
    "GET",
    `${cms}?limit=1&continue=${encodeURIComponent(page.metadata.continue)}`,
  );
  assert.equal(cont.status, 410, JSON.stringify(cont.body));
  assert.equal(cont.body.reason, "Expired");

  // A watch from the compacted resourceVersion: 410, as an ERROR event in a 200 stream or as
  // the HTTP status.
  let code: number | undefined;
  try {
    const watch = await openWatch<KubeStatus>(`${cms}?resourceVersion=${oldRV}`);
    try {
      const event = await watch.next({ timeoutMs: 10_000 });
      assert.equal(event?.type, "ERROR", JSON.stringify(event));
      code = event?.object.code;
      assert.equal(event?.object.reason, "Expired");
    } finally {
      await watch.close();
    }
  } catch (err) {
    if (!(err instanceof KubeError)) throw err;
    code = err.status;
  }
  assert.equal(code, 410);

  // A watch from a current resourceVersion works again.
  const current = (await kubeOk<KubeList>("GET", cms)).metadata.resourceVersion;
  const watch = await openWatch(`${cms}?resourceVersion=${current}`);
  try {
    await kubeOk("POST", cms, { body: { metadata: { name: "after-restart" } } });
    const event = await watch.waitFor((e) => e.type === "ADDED");
    assert.equal(event.object.metadata?.name, "after-restart");
  } finally {
    await watch.close();
  }
});

Deno.test("a proxy cut reaches an open watch stream as a connection error", async () => {
  const ns = await createNamespace("cp-cut");
  const cms = `/api/v1/namespaces/${ns}/configmaps`;
  const proxy = await createProxy();
  const client = createClient();
  try {
    const watch = await openWatch(cms, { server: proxy.url, client });
    try {
      await kubeOk("POST", cms, { body: { metadata: { name: "seen" } } });
      const event = await watch.next({ timeoutMs: 10_000 });
      assert.equal(event?.object.metadata?.name, "seen");
      assert.equal((await proxy.stats()).open, 1);

      assert.ok(await proxy.cut() >= 1);
      const started = Date.now();
      const err = await watch.next({ timeoutMs: 5_000 }).then(
        (e) => assert.fail(`expected an error, got ${JSON.stringify(e)}`),
        (e: unknown) => e,
      );
      assert.ok(err instanceof TypeError, `a network error, not ${err}`);
      assert.ok(Date.now() - started < 5_000);
    } finally {
      await watch.close();
    }
    // Nothing is wrong with the proxy itself: a new connection works.
    const res = await kube("GET", cms, { server: proxy.url, client });
    assert.equal(res.status, 200);
  } finally {
    client.close();
    await proxy.close();
  }
});

Deno.test("a black-holed proxy makes requests hang while a new connection after pass works", async () => {
  const ns = await createNamespace("cp-blackhole");
  const cms = `/api/v1/namespaces/${ns}/configmaps`;
  const proxy = await createProxy();
  const warm = createClient();
  const cold = createClient();
  const fresh = createClient();
  try {
    const watch = await openWatch(cms, { server: proxy.url, client: warm });
    try {
      assert.equal((await kube("GET", cms, { server: proxy.url, client: warm })).status, 200);
      await proxy.blackhole();
      // An event the watch would see, if anything got through.
      await kubeOk("POST", cms, { body: { metadata: { name: "unseen" } } });

      /** Resolves with the time a request took to fail, if it failed by the timeout only. */
      const hangs = async (client: Deno.HttpClient): Promise<number> => {
        const started = Date.now();
        const err = await kubeFetch("GET", cms, {
          server: proxy.url,
          client,
          signal: AbortSignal.timeout(2_000),
        }).then(async (res) => {
          await res.body?.cancel();
          return new Error(`got a response: HTTP ${res.status}`);
        }, (e: unknown) => e);
        assert.ok(err instanceof DOMException && err.name === "TimeoutError", `${err}`);
        return Date.now() - started;
      };
      const watchStarted = Date.now();
      const [onOpenConnection, onNewConnection, watchErr] = await Promise.all([
        hangs(warm),
        hangs(cold),
        watch.next({ timeoutMs: 2_000 }).then((e) => e, (e: Error) => e),
      ]);
      assert.ok(onOpenConnection >= 1_900, `${onOpenConnection} ms`);
      assert.ok(onNewConnection >= 1_900, `${onNewConnection} ms`);
      assert.ok(watchErr instanceof Error && /timed out/.test(watchErr.message), `${watchErr}`);
      assert.ok(Date.now() - watchStarted >= 1_900);
    } finally {
      await watch.close();
    }

    const before = await proxy.stats();
    assert.equal(before.mode, "blackhole");
    await proxy.pass();
    const list = await kubeOk<KubeList>("GET", cms, { server: proxy.url, client: fresh });
    assert.deepEqual(list.items.map((i) => i.metadata?.name), ["unseen"]);
    const after = await proxy.stats();
    assert.equal(after.mode, "pass");
    assert.ok(after.accepted > before.accepted, "the request came through a new connection");
  } finally {
    warm.close();
    cold.close();
    fresh.close();
    await proxy.close();
  }
});
