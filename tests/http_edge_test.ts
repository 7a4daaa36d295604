/**
 * The HTTP edge as another Pod meets it (issue 16), against the real control plane: a hostile
 * client in a network namespace (tests/support/netns.ts, tests/support/hostile_client.ts) sends
 * a seeded fuzz of methods, request targets, encodings and Host headers to both listeners, and
 * then floods the main one with half-open and idle keep-alive connections while the Pod's own
 * client reads /endpoints and the Service changes.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  createNamespace,
  createPod,
  createPods,
  createService,
} from "./support/cluster/fixtures.ts";
import { sleep, waitFor } from "./support/cluster/wait.ts";
import type { FloodResult, FuzzAnswer } from "./support/hostile_client.ts";
import { createPodNetwork, type PodNetwork } from "./support/netns.ts";
import { LIVE_TEST as T } from "./support/options.ts";
import { podMount, type SidecarProcess, spawnSidecar } from "./support/sidecar.ts";
import { runHostile, runInNamespace } from "./support/hostile_run.ts";
import { readUntilClosed } from "./support/raw_read.ts";

/** The examples' memory limit (examples/*.yaml: 256Mi). */
const MEMORY_LIMIT = 256 * 1024 * 1024;

/** Sends raw bytes to a loopback port; what comes back until the server closes (or 3 s). */
async function raw(port: number, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(text));
    return await readUntilClosed(conn, 3_000);
  } finally {
    conn.close();
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function vmRss(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/** A Service of two ready Pods, its sidecar (with a probe port) and a namespace outside. */
async function setup(prefix: string, args: string[] = []) {
  const ns = await createNamespace(prefix);
  await createService(ns, "web");
  await createPods(ns, 2, { labels: { app: "web" }, nodeName: `${prefix}-node`, prefix: "web" });
  const mount = await podMount(ns);
  const probePort = freePort();
  const sidecar = await spawnSidecar({
    env: mount.env,
    args: ["--service-name=web", `--probe-port=${probePort}`, ...args],
  });
  const good = await waitFor(async () => {
    const r = await sidecar.request("/endpoints");
    return r.status === 200 && r.json().subsets[0]?.addresses?.length === 2 && r.text;
  }, { message: "two ready endpoints" });
  const net = await createPodNetwork();
  const port = Number(new URL(sidecar.url).port);
  return {
    ns,
    sidecar,
    good,
    net,
    port,
    probePort,
    async close() {
      await sidecar.stop();
      await net.remove();
      await mount.remove();
    },
  };
}

function errorLines(sidecar: SidecarProcess): Record<string, unknown>[] {
  return sidecar.logs.filter((l) => l.level === "error" || l.raw !== undefined);
}

Deno.test(
  "a hostile client outside the Pod gets health and 4xx from both listeners: never the data, never a 5xx, never an error log line",
  T,
  async () => {
    const seed = Number(Deno.env.get("KPD_FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`fuzz seed ${seed} (replay with KPD_FUZZ_SEED=${seed})`);
    const s = await setup("edge-fuzz");
    try {
      const targets = [s.port, s.probePort].flatMap((port) => [
        { host: s.net.hostV4, port },
        { host: s.net.hostV6, port },
      ]);
      const answers = await runHostile<FuzzAnswer[]>(s.net, {
        mode: "fuzz",
        targets,
        seed,
        count: 600,
      });
      assert.equal(answers.length, 600);
      const tally = new Map<string, number>();
      for (const a of answers) {
        const where = a.port === s.probePort ? "probe" : "main";
        const key = `${where} ${a.status} ${a.body}`;
        tally.set(key, (tally.get(key) ?? 0) + 1);
        const what = `seed ${seed}: ${where} ${a.request} -> ${a.status} ${a.body} ${
          a.sample ?? ""
        }`;
        assert.ok(a.status < 500, `no 5xx: ${what}`);
        assert.notEqual(a.body, "other", `nothing but health, metrics or an error: ${what}`);
        if (a.status === 200) {
          assert.ok(
            a.body === "ok" || a.body === "none" || (where === "main" && a.body === "metrics"),
            `only health (and /metrics on the main port) answers 200: ${what}`,
          );
        }
        if (a.status === 0) assert.equal(a.body, "none", what);
      }
      console.log([...tally].sort().map(([k, n]) => `${k}: ${n}`).join("\n"));
      assert.ok((tally.get("probe 200 ok") ?? 0) > 0, "the probes were answered");
      assert.deepEqual(errorLines(s.sidecar), [], "no error log line");
      // Still up, same view.
      assert.equal((await s.sidecar.request("/endpoints")).text, s.good);
      assert.equal((await s.sidecar.request("/livez")).text, "ok");
    } finally {
      await s.close();
    }
  },
);

Deno.test(
  "/readyz from outside the Pod is status only; the probe listener is dual-stack and leaks nothing through an unclean path",
  T,
  async () => {
    const s = await setup("edge-probe");
    try {
      const started = s.sidecar.logs.find((l) => l.msg === "started")!;
      assert.equal(started.probes, `[::]:${s.probePort}`, "dual-stack by default");
      for (const host of [s.net.hostV4, `[${s.net.hostV6}]`]) {
        for (const port of [s.port, s.probePort]) {
          const r = await s.net.request(`http://${host}:${port}/readyz`);
          assert.deepEqual(r, { status: 200, body: "ok" }, `${host}:${port}`);
        }
        for (const path of ["/endpoints/%2e%2e/livez", "/endpoints/../livez"]) {
          const leak = await s.net.request(`http://${host}:${s.probePort}${path}`, {
            pathAsIs: true,
          });
          assert.equal(leak.status, 301, path);
          assert.doesNotMatch(leak.body, /subsets/);
        }
      }
      // The main listener, from the Pod: as the Go service's ServeMux, an unclean path is a 301
      // to the clean one and an unknown path is 404 JSON whatever the method.
      for (
        const [path, location] of [
          ["/endpoints/../health/", "/health/"],
          ["/endpoints/./", "/endpoints/"],
          ["/health/../endpoints/", "/endpoints/"],
          ["/endpoints/%2e%2e/x?a=1", "/x?a=1"],
        ]
      ) {
        const r = await raw(s.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        assert.match(r, /^HTTP\/1\.1 301/, path);
        assert.match(
          r,
          new RegExp(`\r\nlocation: ${location!.replace("?", "\\?")}\r\n`, "i"),
          path,
        );
      }
      for (const method of ["GET", "POST", "DELETE"]) {
        const r = await s.sidecar.request("/nope", { method });
        assert.equal(r.status, 404, method);
        assert.match(r.json().error, /no route/);
      }
      // From the Pod itself, the probe port's unclean path is no door to the data either.
      for (const path of ["/livez/../endpoints", "/health/%2e%2e/endpoints/", "/endpoints"]) {
        const r = await raw(
          s.probePort,
          `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        );
        assert.match(r, /^HTTP\/1\.1 404/, path);
        assert.doesNotMatch(r, /subsets/);
      }
    } finally {
      await s.close();
    }
  },
);

Deno.test(
  "a flood of half-open and idle connections from outside the Pod is capped and timed out while the Pod's own client reads every change",
  T,
  async () => {
    const headerS = 3;
    const idleS = 5;
    const s = await setup("edge-flood", [`--header-timeout=${headerS}`, `--idle-timeout=${idleS}`]);
    try {
      const rssBefore = await vmRss(s.sidecar.pid);
      let peak = rssBefore;
      let reads = 0;
      const latencies: number[] = [];
      let reading = true;
      const reader = (async () => {
        while (reading) {
          const t0 = performance.now();
          const r = await s.sidecar.request("/endpoints");
          latencies.push(performance.now() - t0);
          assert.equal(r.status, 200);
          reads++;
          peak = Math.max(peak, await vmRss(s.sidecar.pid));
          await sleep(20);
        }
      })();
      const flood = runHostile<FloodResult>(s.net, {
        mode: "flood",
        host: s.net.hostV4,
        port: s.port,
        halfOpen: 3000,
        idle: 3000,
        holdMs: 15_000,
        refusedWithinMs: (headerS - 0.5) * 1000,
      });
      await sleep(2_000);
      // The Service changes during the flood: the Pod's own client sees it.
      await createPod(s.ns, "web-new", {
        labels: { app: "web" },
        nodeName: "edge-flood-node",
        ready: true,
      });
      await waitFor(async () => {
        const r = await s.sidecar.request("/endpoints");
        return r.json().subsets[0]?.addresses?.length === 3;
      }, { timeoutMs: 10_000, message: "the change served during the flood" });
      const result = await flood;
      reading = false;
      await reader;
      latencies.sort((a, b) => a - b);
      const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
      console.log(
        `flood: ${JSON.stringify({ ...result, closedAfterMs: undefined })}; loopback reads ` +
          `${reads}, p99 ${p99.toFixed(1)} ms; VmRSS ${(rssBefore / 2 ** 20).toFixed(1)} -> ` +
          `peak ${(peak / 2 ** 20).toFixed(1)} MiB`,
      );
      const admitted = result.admitted.halfOpen + result.admitted.idle;
      assert.ok(admitted <= 200, `at most 200 (the per-client cap) admitted: ${admitted}`);
      assert.ok(result.refused >= 5_000, `the rest closed at once: ${result.refused}`);
      const late = (ms: number[], limitS: number) =>
        ms.filter((x) => x < 0 || x > (limitS + 2) * 1000);
      assert.deepEqual(late(result.closedAfterMs.halfOpen, headerS), [], "half-open: header limit");
      assert.deepEqual(late(result.closedAfterMs.idle, idleS), [], "idle: idle limit");
      assert.ok(peak < MEMORY_LIMIT / 2, `VmRSS peak ${peak} well under the examples' limit`);
      assert.ok(reads > 50, `${reads} loopback reads`);
      assert.deepEqual(errorLines(s.sidecar), []);
      // After the flood the remote door works again.
      assert.deepEqual(await s.net.request(`http://${s.net.hostV4}:${s.port}/health`), {
        status: 200,
        body: "ok",
      });
    } finally {
      await s.close();
    }
  },
);

Deno.test(
  "when clients outside the Pod fill the total cap, a new address still gets /livez: the address holding the most gives up a connection",
  T,
  async () => {
    // Total 40, 15 per client: two addresses of one namespace take 15 each, a third address
    // asks for 15 more, so the total is full while every address is under its own cap (the
    // reviewer's five Pods holding 200 of 1,000, made small).
    const s = await setup("edge-fair", [
      "--max-remote-connections=40",
      "--max-connections-per-client=15",
    ]);
    const other = await createPodNetwork();
    const kubelet = await createPodNetwork();
    try {
      const hold = (net: PodNetwork, host: string) =>
        runHostile<FloodResult>(net, {
          mode: "flood",
          host,
          port: s.port,
          halfOpen: 10,
          idle: 10,
          holdMs: 8_000,
        });
      const heavyV4 = hold(s.net, s.net.hostV4);
      const heavyV6 = hold(s.net, s.net.hostV6);
      await sleep(1_500);
      const light = hold(other, other.hostV4);
      await sleep(2_500);
      // The kubelet, from an address of its own, over each family.
      for (const host of [kubelet.hostV4, `[${kubelet.hostV6}]`]) {
        const r = await kubelet.request(`http://${host}:${s.port}/livez`).catch((e) => ({
          status: 0,
          body: String(e),
        }));
        assert.deepEqual(r, { status: 200, body: "ok" }, `/livez from ${host} while full`);
      }
      const [a, b, c] = await Promise.all([heavyV4, heavyV6, light]);
      const admitted = (r: FloodResult) => r.admitted.halfOpen + r.admitted.idle;
      const kept = (r: FloodResult) =>
        [...r.closedAfterMs.halfOpen, ...r.closedAfterMs.idle].filter((ms) => ms < 0).length;
      console.log(
        `admitted ${[a, b, c].map(admitted).join(", ")}; kept to the end ` +
          [a, b, c].map(kept).join(", "),
      );
      assert.equal(admitted(a), 15, "the per-client cap");
      assert.equal(admitted(b), 15, "the per-client cap");
      // The third address took slots from the two holding more until all held about as many
      // (40 / 3), and the probes each took one from whoever held the most.
      for (const r of [a, b, c]) {
        assert.ok(kept(r) >= 12 && kept(r) <= 14, `the total shared: ${kept(r)} kept`);
      }
      assert.ok(kept(a) + kept(b) + kept(c) <= 40, "never over the total cap");
      assert.deepEqual(errorLines(s.sidecar), []);
    } finally {
      await kubelet.remove();
      await other.remove();
      await s.close();
    }
  },
);

Deno.test(
  "a listen error on every interface names the port and its setting, never 'undefined'",
  T,
  async () => {
    const sa = await Deno.makeTempDir({ prefix: "kpd-sa-" });
    try {
      for (const f of ["token", "ca.crt", "namespace"]) {
        await Deno.writeTextFile(`${sa}/${f}`, "x");
      }
      // Denied by Deno here; a non-root container asking for a port below 1024 meets the same.
      const sidecar = await spawnSidecar({
        env: {
          KUBERNETES_SERVICE_HOST: "127.0.0.1",
          KUBERNETES_SERVICE_PORT: "1",
          KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "web",
          KUBERNETES_POD_DISCOVERY_SERVICE_ACCOUNT_DIR: sa,
        },
        denoFlags: ["--allow-net=127.0.0.1", "--allow-read", "--allow-env"],
        waitStarted: false,
      });
      assert.equal((await sidecar.status).code, 2);
      const lines = sidecar.stderr().trim().split("\n");
      assert.equal(lines.length, 1, sidecar.stderr());
      assert.doesNotMatch(lines[0]!, /undefined/);
      assert.match(
        lines[0]!,
        /Cannot listen on every interface, port 0 \(--listen-port \/ KUBERNETES_POD_DISCOVERY_LISTEN_PORT\): .*net access/,
      );
    } finally {
      await Deno.remove(sa, { recursive: true });
    }
  },
);

Deno.test(
  "a Pod without IPv6 on its loopback starts without a warning and serves over IPv4",
  T,
  async () => {
    const net = await createPodNetwork();
    const dir = await Deno.makeTempDir({ prefix: "kpd-nov6-" });
    try {
      await new Deno.Command("ip", {
        args: ["netns", "exec", net.name, "sysctl", "-qw", "net.ipv6.conf.lo.disable_ipv6=1"],
      }).output();
      const lib = new URL("../lib/", import.meta.url).href;
      const script = `${dir}/serve.ts`;
      await Deno.writeTextFile(
        script,
        `import { servePort } from "${lib}listeners.ts";
import { createLogger } from "${lib}log.ts";
const lines: unknown[] = [];
const log = createLogger("info", { write: (l) => lines.push(JSON.parse(l)) });
const p = servePort({
  port: 0,
  handler: () => new Response("ok"),
  limits: { headerTimeoutMs: 9000, idleTimeoutMs: 9000, maxConnections: 9, maxPerClient: 9 },
  isLocal: (h) => h === "127.0.0.1",
  log,
});
const r = await fetch("http://127.0.0.1:" + p.addr.port + "/");
const body = await r.text();
await p.shutdown();
console.log(JSON.stringify({ addr: p.addr.hostname, body, lines }));
`,
      );
      const result = await runInNamespace<{ addr: string; body: string; lines: unknown[] }>(
        net,
        ["--allow-net", "--allow-read", "--unstable-net"],
        script,
      );
      assert.deepEqual(result, { addr: "::", body: "ok", lines: [] });
    } finally {
      await Deno.remove(dir, { recursive: true });
      await net.remove();
    }
  },
);
