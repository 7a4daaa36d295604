/**
 * A true drop-in for the Go kubernetes-pod-discovery (issue 9), against the real control plane:
 * the Go service's own example Deployment (tests/support/go_example.yaml) applied with our image,
 * its sidecar run with exactly that container's env, and its liveness probe sent as the kubelet
 * sends it, from an address outside the Pod (a network namespace, tests/support/netns.ts); every
 * route of the Go service with and without its trailing slash, on its subtree and with another
 * method; and `lastUpdated`, parsed by Go's own time.Parse with the Go service's layout, current
 * over an idle healthy watch, frozen across a black hole and current again after it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { createProxy } from "./support/cluster/faults.ts";
import { createNamespace, createPods, waitForEndpointSlices } from "./support/cluster/fixtures.ts";
import { kube } from "./support/cluster/http.ts";
import type { KubeObject } from "./support/cluster/types.ts";
import { sleep, waitFor } from "./support/cluster/wait.ts";
import { parseWithGo } from "./support/go_time.ts";
import { createPodNetwork } from "./support/netns.ts";
import { podMount, type SidecarProcess, spawnSidecar } from "./support/sidecar.ts";
import { LIVE_TEST as T } from "./support/options.ts";

const SUPPORT = new URL("./support/", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;

/**
 * The image's program as `deno run` runs it here: the bundle tools/compile.sh embeds, with the
 * flags of image/deno-flags.txt. The one change: --allow-read names the test's service-account
 * mount (a temp dir) instead of /var/run/secrets/kubernetes.io/serviceaccount, which a test may
 * not write. Returns the spawn options and a cleanup.
 */
async function imageProgram(
  mountDir: string,
): Promise<{ program: string; denoFlags: string[]; remove: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "kpd-dropin-" });
  const program = `${dir}/kubernetes-pod-discovery.js`;
  const b = await new Deno.Command(`${ROOT}tools/compile.sh`, {
    args: ["--bundle", program],
    env: { DENO: Deno.execPath() },
    stdout: "null",
  }).output();
  assert.equal(b.code, 0, new TextDecoder().decode(b.stderr));
  const flags = (await Deno.readTextFile(`${ROOT}image/deno-flags.txt`)).split("\n")
    .map((l) => l.replace(/#.*/, "").trim()).filter((l) => l !== "")
    .map((f) => f.startsWith("--allow-read=") ? `--allow-read=${mountDir}` : f);
  assert.ok(flags.includes(`--allow-read=${mountDir}`));
  return {
    program,
    denoFlags: ["--no-config", ...flags],
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}

interface GoContainer {
  name: string;
  image: string;
  env: { name: string; value: string }[];
  livenessProbe: { httpGet: { path: string; port: number } };
}

/** The Go example's objects, with its namespace `default` mapped to the test's. */
function goExample(ns: string): { deployment: KubeObject; service: KubeObject } {
  const docs = parseAllDocuments(Deno.readTextFileSync(`${SUPPORT}/go_example.yaml`))
    .map((d) => d.toJS() as KubeObject);
  const map = (o: KubeObject): KubeObject => {
    const copy = structuredClone(o);
    copy.metadata = { ...copy.metadata, namespace: ns };
    return copy;
  };
  const deployment = map(docs.find((d) => d.kind === "Deployment")!);
  for (const e of sidecarOf(deployment).env) {
    if (e.name === "KUBERNETES_POD_DISCOVERY_NAMESPACE") e.value = ns;
  }
  return { deployment, service: map(docs.find((d) => d.kind === "Service")!) };
}

function sidecarOf(deployment: KubeObject): GoContainer {
  // deno-lint-ignore no-explicit-any -- a manifest read field by field
  const containers = (deployment as any).spec.template.spec.containers as GoContainer[];
  return containers.find((c) => c.name === "kubernetes-pod-discovery")!;
}

/** Applies the Go example and makes its three Pods Ready; returns the sidecar's env. */
async function applyGoExample(
  ns: string,
): Promise<{ env: Record<string, string>; c: GoContainer }> {
  const { deployment, service } = goExample(ns);
  for (
    const [path, body] of [
      [`/apis/apps/v1/namespaces/${ns}/deployments`, deployment],
      [`/api/v1/namespaces/${ns}/services`, service],
    ] as const
  ) {
    const res = await kube("POST", `${path}?fieldValidation=Strict`, { body });
    assert.equal(res.status, 201, `${body.kind}: ${JSON.stringify(res.body)}`);
  }
  const c = sidecarOf(deployment);
  assert.match(c.image, /kubernetes-pod-discovery/);
  // deno-lint-ignore no-explicit-any -- a manifest read field by field
  const labels = (deployment as any).spec.template.metadata.labels;
  await createPods(ns, 3, { labels, nodeName: "dropin-node", prefix: "nginx" });
  await waitForEndpointSlices(
    ns,
    "nginx",
    (s) => s.flatMap((x) => x.endpoints ?? []).filter((e) => e.conditions?.ready).length === 3,
  );
  return { env: Object.fromEntries(c.env.map((e) => [e.name, e.value])), c };
}

/** Starts a sidecar with an env and waits for /readyz. */
async function ready(
  env: Record<string, string>,
  args: string[] = [],
  spawn: { program?: string; denoFlags?: string[] } = {},
): Promise<SidecarProcess> {
  const sidecar = await spawnSidecar({ env, args, ...spawn });
  await waitFor(async () => (await sidecar.request("/readyz")).status === 200, {
    message: "/readyz 200",
  }).catch((e) => {
    throw new Error(`${(e as Error).message}; sidecar log:\n${sidecar.stderr()}`);
  });
  return sidecar;
}

Deno.test(
  "the Go service's example Deployment, with our image, is accepted; its liveness probe from outside the Pod gets ok, the data stays in the Pod",
  T,
  async () => {
    const ns = await createNamespace("dropin");
    const { env, c } = await applyGoExample(ns);
    // The Go example sets no port: the default, 8080, is what its probe names.
    assert.equal(env.KUBERNETES_POD_DISCOVERY_LISTEN_PORT, undefined);
    assert.deepEqual(c.livenessProbe.httpGet, { path: "/health", port: 8080 });
    // The example's Pod runs as the namespace's `default` ServiceAccount, granted the one Role
    // rule docs/migrating.md asks for; the sidecar is the image's program with its flags.
    const mount = await podMount(ns, { serviceAccount: "default" });
    const image = await imageProgram(mount.dir);
    const net = await createPodNetwork();
    // Exactly the container's env plus what the kubelet adds (API address, token mount); the
    // port alone is a free one (spawnSidecar's --listen-port=0): the machine is shared.
    const sidecar = await ready({ ...env, ...mount.env }, [], image);
    try {
      const started = sidecar.logs.find((l) => l.msg === "started")!;
      assert.match(String(started.listen), /^\[::\]:\d+$/, "every interface, dual-stack");
      const port = Number(new URL(sidecar.url).port);

      // The kubelet: an HTTP GET from outside the Pod to the Pod's IP, v4 and v6.
      for (const host of [net.hostV4, `[${net.hostV6}]`]) {
        const base = `http://${host}:${port}`;
        const probe = await net.request(`${base}${c.livenessProbe.httpGet.path}`);
        assert.deepEqual(probe, { status: 200, body: "ok" }, `${host} liveness`);
        for (const path of ["/health/", "/livez", "/readyz", "/metrics"]) {
          assert.equal((await net.request(`${base}${path}`)).status, 200, `${host} ${path}`);
        }
        for (
          const path of ["/endpoints/", "/endpoints", "/endpoints/last_updated/", "/v1/services"]
        ) {
          const r = await net.request(`${base}${path}`);
          assert.equal(r.status, 403, `${host} ${path}`);
          const error = JSON.parse(r.body).error as string;
          assert.match(error, /KUBERNETES_POD_DISCOVERY_ALLOW_REMOTE_DATA=true/);
          assert.doesNotMatch(r.body, /10\.244\./, "no address leaks in the refusal");
        }
      }
      // From inside the Pod (loopback, v4 and v6): everything.
      for (const base of [sidecar.url, `http://[::1]:${port}`]) {
        const r = await fetch(`${base}/endpoints/`);
        assert.equal(r.status, 200);
        const body = await r.json();
        assert.equal(body.subsets[0].addresses.length, 3);
        assert.equal((await sidecar.request("/v1/services")).status, 200);
      }
      assert.equal(await sidecar.stop(), 0);
      assert.deepEqual(sidecar.logs.filter((l) => l.level === "error"), []);
      assert.doesNotMatch(sidecar.stderr(), /NotCapable|PermissionDenied|Requires \w+ access/);
    } finally {
      await sidecar.stop();
      await net.remove();
      await mount.remove();
      await image.remove();
    }
  },
);

Deno.test(
  "with --allow-remote-data a client outside the Pod reads the endpoints; with --listen-address=127.0.0.1 it cannot connect at all",
  T,
  async () => {
    const ns = await createNamespace("dropin-open");
    const { env } = await applyGoExample(ns);
    const mount = await podMount(ns);
    const net = await createPodNetwork();
    const open = await ready({
      ...env,
      ...mount.env,
      KUBERNETES_POD_DISCOVERY_ALLOW_REMOTE_DATA: "true",
    });
    const closed = await ready({ ...env, ...mount.env }, ["--listen-address=127.0.0.1"]);
    try {
      const openPort = new URL(open.url).port;
      const r = await net.request(`http://${net.hostV4}:${openPort}/endpoints/`);
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body).subsets[0].addresses.length, 3);
      const closedPort = new URL(closed.url).port;
      await assert.rejects(net.request(`http://${net.hostV4}:${closedPort}/health`), /curl/);
      assert.equal((await closed.request("/endpoints/")).status, 200);
    } finally {
      await open.stop();
      await closed.stop();
      await net.remove();
      await mount.remove();
    }
  },
);

const GO_TIME = /^\{"lastUpdated": "(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000)"\}$/;

Deno.test(
  "every route of the Go service answers with and without its trailing slash, on its subtree and with any method",
  T,
  async () => {
    const ns = await createNamespace("dropin-routes");
    const { env } = await applyGoExample(ns);
    const mount = await podMount(ns);
    const sidecar = await ready({ ...env, ...mount.env });
    try {
      const endpoints = (await sidecar.request("/endpoints/")).text;
      assert.equal(JSON.parse(endpoints).subsets[0].addresses.length, 3);
      const table: [string, string, number, (text: string, h: Headers) => void][] = [];
      for (const method of ["GET", "POST", "PUT", "DELETE"]) {
        for (const path of ["/endpoints", "/endpoints/", "/endpoints/foo", "/endpoints/a/b"]) {
          table.push([method, path, 200, (t, h) => {
            assert.equal(t, endpoints);
            assert.match(h.get("content-type")!, /^application\/json/);
          }]);
        }
        for (
          const path of [
            "/endpoints/last_updated",
            "/endpoints/last_updated/",
            "/endpoints/last_updated/x",
          ]
        ) {
          table.push([method, path, 200, (t) => assert.match(t, GO_TIME)]);
        }
        for (const path of ["/health", "/health/", "/health/deep"]) {
          table.push([method, path, 200, (t) => assert.equal(t, "ok")]);
        }
      }
      for (const path of ["/livez", "/readyz", "/metrics"]) {
        table.push(["GET", path, 200, () => {}]);
        table.push(["POST", path, 405, () => {}]);
      }
      table.push(["GET", "/livez/", 404, () => {}]);
      table.push(["GET", "/", 404, (t) => assert.match(JSON.parse(t).error, /no route/)]);
      table.push(["HEAD", "/endpoints/", 200, (t) => assert.equal(t, "")]);
      for (const [method, path, status, check] of table) {
        const r = await sidecar.request(path, {
          method,
          body: method === "GET" || method === "HEAD" ? undefined : "x",
        });
        assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
        check(r.text, r.headers);
      }
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

// ---------------------------------------------------------------------------------------------
// lastUpdated, read by Go

/** One reading of /endpoints/last_updated/: the stamp (Go-parsed) and when it was read. */
interface Reading {
  stamp: string;
  at: number;
  ageHeader: number;
}

async function read(sidecar: SidecarProcess): Promise<Reading> {
  const r = await sidecar.request("/endpoints/last_updated/");
  assert.equal(r.status, 200, r.text);
  const m = GO_TIME.exec(r.text);
  assert.ok(m, `the body is exactly {"lastUpdated": "<Go layout>"}: ${r.text}`);
  return {
    stamp: m[1]!,
    at: Date.now() / 1000,
    ageHeader: Number(r.headers.get("x-discovery-age-seconds")),
  };
}

Deno.test(
  "Go's time.Parse reads lastUpdated; it is at most 5 s old over a 20 s idle healthy watch",
  T,
  async () => {
    const parsed = await parseWithGo(["2026-11-27T13:25:41.475Z"]);
    assert.match(
      String(parsed[0]),
      /cannot parse "\.475Z" as "-0700"|cannot parse/,
      "the parser is strict",
    );
    const ns = await createNamespace("dropin-idle");
    const { env } = await applyGoExample(ns);
    const mount = await podMount(ns);
    const sidecar = await ready({ ...env, ...mount.env });
    try {
      const readings: Reading[] = [];
      const end = Date.now() + 20_000;
      while (Date.now() < end) {
        readings.push(await read(sidecar));
        await sleep(1_000);
      }
      const seconds = await parseWithGo(readings.map((r) => r.stamp));
      for (const [i, r] of readings.entries()) {
        const s = seconds[i];
        assert.equal(typeof s, "number", `Go could not parse ${r.stamp}: ${s}`);
        const age = r.at - (s as number);
        assert.ok(age <= 5 && age > -1, `read at ${r.at}: ${r.stamp} is ${age.toFixed(1)} s old`);
        assert.ok(r.ageHeader <= 5, `X-Discovery-Age-Seconds ${r.ageHeader}`);
      }
      assert.ok(readings.length >= 10, `${readings.length} readings`);
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

/** With default settings a dead connection is noticed within this many seconds of going
 * silent (a probe after 30 s of silence, answered within 15 s: README). */
const NOTICED_S = 45;

Deno.test(
  "lastUpdated freezes while the API server is black-holed and is current again after",
  T,
  async () => {
    const ns = await createNamespace("dropin-bh");
    const { env } = await applyGoExample(ns);
    const proxy = await createProxy();
    const mount = await podMount(ns, { server: proxy.url });
    // Default settings: the Go example's env only.
    const sidecar = await ready({ ...env, ...mount.env }, []);
    try {
      const before = await read(sidecar);
      const [beforeS] = await parseWithGo([before.stamp]);
      assert.ok(before.at - (beforeS as number) <= 5, `before: ${before.stamp}`);

      const holeAt = Date.now() / 1000;
      await proxy.blackhole();
      // Until the dead connection is noticed the stamp keeps moving; from then on it stays
      // where it was. Wait for it to stop (bounded by the detection time plus slack).
      const frozenAt = await waitFor(async () => {
        const a = await read(sidecar);
        await sleep(2_000);
        const b = await read(sidecar);
        return a.stamp === b.stamp && b;
      }, {
        timeoutMs: (NOTICED_S + 15) * 1000,
        intervalMs: 500,
        message: "lastUpdated froze after the black hole was noticed",
      });
      const during: Reading[] = [frozenAt];
      for (let i = 0; i < 6; i++) {
        await sleep(1_000);
        during.push(await read(sidecar));
      }
      const duringS = await parseWithGo(during.map((r) => r.stamp));
      for (const [i, r] of during.entries()) {
        assert.equal(r.stamp, during[0]!.stamp, `frozen: reading ${i} at ${r.at}`);
        assert.ok(
          (duringS[i] as number) <= holeAt + NOTICED_S + 5,
          `${r.stamp}: not after it was noticed`,
        );
        assert.ok(
          r.ageHeader >= Math.floor(r.at - (duringS[i] as number)) - 1,
          "the age header agrees",
        );
      }
      console.log(
        `lastUpdated froze ${((duringS[0] as number) - holeAt).toFixed(0)} s after the black hole`,
      );

      const passAt = Date.now() / 1000;
      await proxy.pass();
      // No change is made: the resumed watch is known current again from its streaming list,
      // without waiting for a bookmark (a watch counts as healthy only from a list, an event or
      // a bookmark after it reconnects).
      const after = await waitFor(async () => {
        const r = await read(sidecar);
        const [s] = await parseWithGo([r.stamp]);
        return (s as number) >= Math.floor(passAt) && r;
      }, {
        timeoutMs: 60_000,
        intervalMs: 1_000,
        message: "lastUpdated current again after the black hole",
      });
      const [afterS] = await parseWithGo([after.stamp]);
      assert.ok(after.at - (afterS as number) <= 5, `after: ${after.stamp}`);
    } finally {
      await sidecar.stop();
      await proxy.close();
      await mount.remove();
    }
  },
);
