/** Bad settings stop the sidecar with one clear line; bad requests leave it and its view intact. */
import assert from "node:assert/strict";
import { createNamespace, createPods, createService } from "./support/cluster/fixtures.ts";
import { waitFor } from "./support/cluster/wait.ts";
import { podMount, spawnSidecar } from "./support/sidecar.ts";
import { LIVE_TEST as T } from "./support/options.ts";

const SEED = { KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "web" };
const IN_CLUSTER = { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: "1" };

for (
  const [what, env, args, pattern] of [
    [
      "port abc",
      { ...SEED, ...IN_CLUSTER, KUBERNETES_POD_DISCOVERY_LISTEN_PORT: "abc" },
      [],
      /KUBERNETES_POD_DISCOVERY_LISTEN_PORT: "abc" is not a port number/,
    ],
    ["port 70000", { ...SEED, ...IN_CLUSTER }, ["--listen-port=70000"], /"70000" is not a port/],
    [
      "an empty service name",
      { ...IN_CLUSTER, KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "" },
      [],
      /KUBERNETES_POD_DISCOVERY_SERVICE_NAME is empty: set it to the name of the Service/,
    ],
    [
      "a listen address that is not an IP address",
      { ...SEED, ...IN_CLUSTER, KUBERNETES_POD_DISCOVERY_LISTEN_ADDRESS: "nonsense host" },
      [],
      /KUBERNETES_POD_DISCOVERY_LISTEN_ADDRESS: "nonsense host" is not an IP address/,
    ],
    [
      "a listen address this host does not have",
      { ...SEED, ...IN_CLUSTER, KUBERNETES_POD_DISCOVERY_SERVICE_ACCOUNT_DIR: "SA_DIR" },
      ["--listen-address=192.0.2.1", "--allow-remote-data"],
      /Cannot listen on --listen-address .*"192\.0\.2\.1": .*; use an address of this Pod/,
    ],
    [
      "a Pod address to listen on without --allow-remote-data",
      { ...SEED, ...IN_CLUSTER, KUBERNETES_POD_DISCOVERY_LISTEN_ADDRESS: "10.1.2.3" },
      [],
      /Cannot use KUBERNETES_POD_DISCOVERY_LISTEN_ADDRESS=10\.1\.2\.3 without --allow-remote-data: the Pod's own containers would connect from that address/,
    ],
    [
      "an unreadable kubeconfig",
      SEED,
      ["--kubeconfig=/nonexistent/config"],
      /Cannot read kubeconfig \/nonexistent\/config \(--kubeconfig \/ KUBECONFIG\)/,
    ],
    [
      "neither a kubeconfig nor a cluster",
      SEED,
      [],
      /Neither a cluster nor a kubeconfig found: run in a pod .* or set --kubeconfig/,
    ],
    [
      "a cluster without a mounted service account",
      { ...SEED, ...IN_CLUSTER, KUBERNETES_POD_DISCOVERY_SERVICE_ACCOUNT_DIR: "/nonexistent" },
      [],
      /Cannot read \/nonexistent\/ca.crt \(--service-account-dir\)/,
    ],
    [
      "an invalid service selector",
      { ...IN_CLUSTER, KUBERNETES_POD_DISCOVERY_SERVICE_SELECTOR: "app web" },
      [],
      /Cannot parse KUBERNETES_POD_DISCOVERY_SERVICE_SELECTOR: "app web" is not a label selector/,
    ],
  ] as const
) {
  Deno.test(`${what} exits non-zero with one line naming the setting`, T, async () => {
    // The listener starts after the service account is read: give it a readable one.
    const sa = await Deno.makeTempDir({ prefix: "kpd-sa-" });
    for (const f of ["token", "ca.crt", "namespace"]) await Deno.writeTextFile(`${sa}/${f}`, "x");
    const e: Record<string, string> = { ...env };
    for (const k of Object.keys(e)) if (e[k] === "SA_DIR") e[k] = sa;
    const sidecar = await spawnSidecar({ env: e, args: [...args], waitStarted: false });
    const status = await sidecar.status;
    await Deno.remove(sa, { recursive: true });
    assert.equal(status.code, 2);
    const lines = sidecar.stderr().trim().split("\n");
    assert.equal(lines.length, 1, sidecar.stderr());
    assert.match(lines[0]!, pattern);
  });
}

Deno.test("--help lists the settings and exits 0", T, async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "main.ts", "--help"],
    cwd: new URL("..", import.meta.url).pathname,
  }).output();
  assert.equal(out.code, 0);
  const text = new TextDecoder().decode(out.stdout);
  assert.match(text, /--listen-port, KUBERNETES_POD_DISCOVERY_LISTEN_PORT/);
});

/** Sends raw bytes to the sidecar and returns what comes back (until close or 2 s). */
async function raw(port: number, bytes: Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(bytes).catch(() => 0);
    const buf = new Uint8Array(4096);
    const n = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<null>((r) => setTimeout(() => r(null), 2000)),
    ]);
    return n ? new TextDecoder().decode(buf.subarray(0, n)) : "";
  } finally {
    conn.close();
  }
}

Deno.test(
  "unknown paths, wrong methods, malformed and oversized requests leave the service and its view untouched",
  T,
  async () => {
    const ns = await createNamespace("badreq");
    await createService(ns, "web");
    await createPods(ns, 2, { labels: { app: "web" }, nodeName: "badreq-node", prefix: "web" });
    const mount = await podMount(ns);
    const sidecar = await spawnSidecar({ env: mount.env, args: ["--service-name=web"] });
    try {
      const good = await waitFor(async () => {
        const r = await sidecar.request("/endpoints");
        return r.status === 200 && r.json().subsets[0]?.addresses?.length === 2 && r.text;
      });
      const nf = await sidecar.request("/no/such/path");
      assert.equal(nf.status, 404);
      assert.match(nf.json().error, /no route/);
      for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
        // The Go service's routes take any method, as its ServeMux did; the added ones do not.
        const seed = await sidecar.request("/endpoints", { method, body: "x" });
        assert.equal(seed.status, 200, method);
        assert.equal(seed.text, good);
        const r = await sidecar.request("/readyz", { method, body: "x" });
        assert.equal(r.status, 405, method);
        assert.equal(r.headers.get("allow"), "GET, HEAD");
      }
      const head = await sidecar.request("/endpoints", { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.text, "");
      const port = Number(new URL(sidecar.url).port);
      const enc = new TextEncoder();
      assert.match(await raw(port, enc.encode("NOT HTTP AT ALL\r\n\r\n")), /^(HTTP\/1.1 400|)/);
      const huge = "GET /endpoints HTTP/1.1\r\nHost: x\r\nX-Big: " + "a".repeat(1 << 20) +
        "\r\n\r\n";
      assert.match(await raw(port, enc.encode(huge)), /^(HTTP\/1.1 4\d\d|)/);
      const longUrl = await sidecar.request("/endpoints?" + "q=1&".repeat(2_000));
      assert.equal(longUrl.status, 200);
      // Still healthy, same view.
      assert.equal((await sidecar.request("/health")).text, "ok");
      assert.equal((await sidecar.request("/endpoints")).text, good);
      assert.equal(await sidecar.stop(), 0, "SIGTERM: a clean exit 0");
    } finally {
      await sidecar.stop();
      await mount.remove();
    }
  },
);

Deno.test("SIGINT stops the sidecar with exit code 0 and a 'stopped' line", T, async () => {
  const ns = await createNamespace("sigint");
  const mount = await podMount(ns);
  const sidecar = await spawnSidecar({ env: mount.env, args: ["--service-name=web"] });
  try {
    await waitFor(async () => (await sidecar.request("/readyz")).status === 200);
    const started = Date.now();
    assert.equal(await sidecar.stop("SIGINT"), 0);
    assert.ok(Date.now() - started < 5_000);
    assert.ok(sidecar.logs.some((l) => l.msg === "stopped"));
  } finally {
    await mount.remove();
  }
});
