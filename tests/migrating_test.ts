/**
 * docs/migrating.md, row by row, against the real control plane: each test pins our side of a
 * difference the guide states (or a sameness it promises), so the guide cannot drift from the
 * code. Every row of the guide names the test here (or elsewhere) that pins it.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  createNamespace,
  createPods,
  createService,
  podIPv4,
  podIPv6,
  waitForEndpointSlices,
} from "./support/cluster/fixtures.ts";
import { grantRole } from "./support/cluster/rbac.ts";
import { sleep, waitFor } from "./support/cluster/wait.ts";
import { GO_ZERO_UNIX, parseWithGo } from "./support/go_time.ts";
import { DISCOVERY_RULES, type PodMount, podMount, spawnSidecar } from "./support/sidecar.ts";
import { BACKOFF_MAX_MS } from "../lib/backoff.ts";
import { LIVE_TEST as T } from "./support/options.ts";

/** The Go service's answer before its first successful poll: Go's zero time, byte for byte
 * (`fmt.Sprintf("{\"lastUpdated\": \"%s\"}", time.Time{}.UTC().Format(layout))`). */
const GO_ZERO_BODY = '{"lastUpdated": "0001-01-01T00:00:00+0000"}';

/** A namespace with Service "web" of `n` Ready Pods, its slices written. */
async function webService(prefix: string, n: number): Promise<string> {
  const ns = await createNamespace(prefix);
  await createService(ns, "web");
  if (n > 0) {
    await createPods(ns, n, { labels: { app: "web" }, nodeName: `${prefix}-node`, prefix: "web" });
  }
  await waitForEndpointSlices(
    ns,
    "web",
    // At least one slice: the controller writes one even for a Service without Pods.
    (s) =>
      s.length > 0 &&
      s.flatMap((x) => x.endpoints ?? []).filter((e) => e.conditions?.ready).length === n,
  );
  return ns;
}

/** The Go example's environment for Service `name` in `ns`, with the Pod's mount. */
function goEnv(mount: PodMount, ns: string, name = "web"): Record<string, string> {
  return {
    ...mount.env,
    KUBERNETES_POD_DISCOVERY_SERVICE_NAME: name,
    KUBERNETES_POD_DISCOVERY_NAMESPACE: ns,
  };
}

Deno.test(
  "while RBAC is missing /endpoints/last_updated/ answers Go's zero time, which Go parses, /endpoints/ stays 503, and both are current within the backoff cap after the Role is granted",
  T,
  async () => {
    const ns = await webService("mig-rbac", 1);
    const mount = await podMount(ns, { rules: [] });
    const sidecar = await spawnSidecar({ env: goEnv(mount, ns) });
    try {
      const denied = await sidecar.waitLog((l) =>
        l.msg === "backing off" && /forbidden/.test(String(l.reason))
      );
      assert.match(String(denied.reason), /Grant the pod's ServiceAccount a Role/, "as the guide");
      // As long as it lasts: read it over 20 s of missing RBAC (the backoff grows meanwhile).
      const end = Date.now() + 20_000;
      let reads = 0;
      while (Date.now() < end) {
        for (const path of ["/endpoints/last_updated/", "/endpoints/last_updated"]) {
          const r = await sidecar.request(path);
          assert.equal(r.status, 200, `${path}: ${r.text}`);
          assert.equal(r.text, GO_ZERO_BODY, path);
          assert.match(r.headers.get("content-type")!, /^application\/json/);
          assert.equal(r.headers.get("x-discovery-age-seconds"), null, "no age: never current");
          assert.equal(r.headers.get("x-discovery-last-updated"), null, "no age: never current");
        }
        // HEAD as Go's net/http answers it: the same status and length, no body.
        const head = await sidecar.request("/endpoints/last_updated/", { method: "HEAD" });
        assert.equal(head.status, 200);
        assert.equal(head.text, "");
        assert.equal(head.headers.get("content-length"), String(GO_ZERO_BODY.length));
        const e = await sidecar.request("/endpoints/");
        assert.equal(e.status, 503, "the endpoints are never served empty before the first list");
        assert.equal(e.headers.get("retry-after"), "1");
        assert.match(e.json().error, /^not ready/);
        assert.equal((await sidecar.request("/readyz")).status, 503);
        reads++;
        await sleep(1_000);
      }
      assert.ok(reads >= 10, `${reads} reads`);
      assert.deepEqual(await parseWithGo(["0001-01-01T00:00:00+0000"]), [GO_ZERO_UNIX]);

      const grantedAt = Date.now();
      await grantRole(ns, { kind: "ServiceAccount", name: mount.serviceAccount }, DISCOVERY_RULES);
      await waitFor(async () => (await sidecar.request("/readyz")).status === 200, {
        timeoutMs: BACKOFF_MAX_MS + 10_000,
        intervalMs: 100,
        message: "ready after the Role is granted",
      });
      const recoveredS = (Date.now() - grantedAt) / 1000;
      console.log(`recovered ${recoveredS.toFixed(1)} s after the Role was granted`);
      assert.ok(recoveredS <= BACKOFF_MAX_MS / 1000 + 5, `${recoveredS} s`);
      const lu = await sidecar.request("/endpoints/last_updated/");
      const [s] = await parseWithGo([JSON.parse(lu.text).lastUpdated]);
      assert.ok(Math.abs(Date.now() / 1000 - (s as number)) <= 5, `current: ${lu.text}`);
      assert.equal((await sidecar.request("/endpoints/")).json().subsets[0].addresses.length, 1);
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

Deno.test(
  "/endpoints is the v1 Endpoints shape with top-level kind and apiVersion, metadata of name, namespace and resourceVersion only, entries sorted, headers application/json; charset=utf-8, ETag, X-Discovery-Index and Cache-Control: no-cache; /health is text/plain",
  T,
  async () => {
    const ns = await webService("mig-shape", 5);
    const mount = await podMount(ns);
    const sidecar = await spawnSidecar({ env: goEnv(mount, ns) });
    try {
      const r = await waitFor(async () => {
        const r = await sidecar.request("/endpoints/");
        return r.status === 200 && r.json().subsets?.[0]?.addresses?.length === 5 && r;
      });
      const body = r.json();
      assert.deepEqual(Object.keys(body), ["kind", "apiVersion", "metadata", "subsets"]);
      assert.equal(body.kind, "Endpoints");
      assert.equal(body.apiVersion, "v1");
      assert.deepEqual(Object.keys(body.metadata), ["name", "namespace", "resourceVersion"]);
      const ips = body.subsets[0].addresses.map((a: { ip: string }) => a.ip);
      const sorted = [...ips].sort((a: string, b: string) =>
        a.split(".").map(Number).reduce((x, n, i) => x || n - Number(b.split(".")[i]), 0)
      );
      assert.deepEqual(ips, sorted, "addresses sorted by IP");

      assert.equal(r.headers.get("content-type"), "application/json; charset=utf-8");
      assert.match(r.headers.get("etag")!, /^"[^"]+"$/);
      assert.equal(r.headers.get("x-discovery-index"), body.metadata.resourceVersion);
      assert.equal(r.headers.get("cache-control"), "no-cache");
      // The age headers: the same clock as lastUpdated, on both data routes.
      const lu = await sidecar.request("/endpoints/last_updated/");
      const [luS] = await parseWithGo([JSON.parse(lu.text).lastUpdated]);
      for (const h of [r.headers, lu.headers]) {
        const at = Date.parse(h.get("x-discovery-last-updated")!);
        assert.ok(Math.abs(at / 1000 - (luS as number)) <= 2, `${at} vs ${lu.text}`);
        assert.ok(Number(h.get("x-discovery-age-seconds")) <= 2, "current: healthy watch");
      }
      const again = await sidecar.request("/endpoints/", {
        headers: { "If-None-Match": r.headers.get("etag")! },
      });
      assert.equal(again.status, 304);
      assert.equal(lu.headers.get("content-type"), "application/json; charset=utf-8");
      assert.equal(lu.headers.get("cache-control"), "no-cache");
      const health = await sidecar.request("/health/");
      assert.equal(health.text, "ok");
      assert.equal(health.headers.get("content-type"), "text/plain; charset=utf-8");
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

Deno.test(
  "a Service without endpoints is subsets: null; one that does not exist is the same, with a current lastUpdated and /readyz 200, one info log line and kpd_endpoint_slices 0",
  T,
  async () => {
    const ns = await webService("mig-missing", 0);
    const mount = await podMount(ns);
    const empty = await spawnSidecar({ env: goEnv(mount, ns, "web") });
    const missing = await spawnSidecar({ env: goEnv(mount, ns, "nosuch") });
    try {
      for (const [sidecar, slices] of [[empty, 1], [missing, 0]] as const) {
        await waitFor(async () => (await sidecar.request("/readyz")).status === 200);
        const r = await sidecar.request("/endpoints/");
        assert.equal(r.status, 200);
        assert.match(r.text, /"subsets":null}$/);
        assert.equal(r.json().subsets, null, "as the Go service's nil slice");
        const lu = await sidecar.request("/endpoints/last_updated/");
        const [s] = await parseWithGo([JSON.parse(lu.text).lastUpdated]);
        assert.ok(Math.abs(Date.now() / 1000 - (s as number)) <= 5, `current: ${lu.text}`);
        const metrics = (await sidecar.request("/metrics")).text;
        const service = slices ? "web" : "nosuch";
        assert.match(
          metrics,
          new RegExp(
            `^kpd_endpoint_slices\\{namespace="${ns}",service="${service}"\\} ${slices}$`,
            "m",
          ),
        );
        assert.match(
          metrics,
          new RegExp(
            `^kpd_endpoints\\{namespace="${ns}",service="${service}",state="all"\\} 0$`,
            "m",
          ),
        );
      }
      const said = missing.logs.filter((l) => l.msg === "watched Service has no EndpointSlices");
      assert.equal(said.length, 1, missing.stderr());
      assert.equal(said[0]!.level, "info");
      assert.equal(said[0]!.service, `${ns}/nosuch`);
      await sleep(2_000);
      assert.equal(
        missing.logs.filter((l) => l.msg === "watched Service has no EndpointSlices").length,
        1,
        "said once, not on every change",
      );
    } finally {
      await empty.stop();
      await missing.stop();
      await mount.remove();
    }
  },
);

Deno.test(
  "a dual-stack Service is IPv4 only in /endpoints, as the Endpoints controller made it, and both families in /v1/services",
  T,
  async () => {
    const ns = await createNamespace("mig-dual");
    await createService(ns, "web", {
      ipFamilies: ["IPv4", "IPv6"],
      ipFamilyPolicy: "RequireDualStack",
    });
    await createPods(ns, 2, {
      labels: { app: "web" },
      nodeName: "mig-dual-node",
      prefix: "web",
      ips: (i) => [podIPv4(i), podIPv6(i)],
    });
    const mount = await podMount(ns);
    const sidecar = await spawnSidecar({ env: goEnv(mount, ns) });
    try {
      const v1 = await waitFor(async () => {
        const r = await sidecar.request(`/v1/services/${ns}/web`);
        const all = r.json().endpoints.flatMap((e: { addresses: string[] }) => e.addresses);
        return r.status === 200 && all.length === 4 && all.sort();
      });
      assert.deepEqual(v1, [podIPv4(0), podIPv4(1), podIPv6(0), podIPv6(1)].sort());
      const body = (await sidecar.request("/endpoints/")).json();
      const ips = body.subsets.flatMap((s: { addresses: { ip: string }[] }) =>
        s.addresses.map((a) => a.ip)
      );
      assert.deepEqual(ips, [podIPv4(0), podIPv4(1)]);
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);
