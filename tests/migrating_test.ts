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
  grantRole,
  sleep,
  waitFor,
  waitForEndpointSlices,
} from "./support/cluster.ts";
import { GO_ZERO_UNIX, parseWithGo } from "./support/go_time.ts";
import { DISCOVERY_RULES, type PodMount, podMount, spawnSidecar } from "./support/sidecar.ts";
import { BACKOFF_MAX_MS } from "../lib/backoff.ts";

const T = { sanitizeOps: false, sanitizeResources: false };

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
    (s) => s.flatMap((x) => x.endpoints ?? []).filter((e) => e.conditions?.ready).length === n,
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
      await sidecar.waitLog((l) => l.msg === "backing off" && /forbidden/.test(String(l.reason)));
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
        }
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
