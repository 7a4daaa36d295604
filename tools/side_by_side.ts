/**
 * The Go kubernetes-pod-discovery and this sidecar side by side against one API server, for the
 * figures of docs/migrating.md's "What you gain". Runs under the control plane:
 *
 * ```sh
 * .cache/bin/control-plane up -- tools/deno run --allow-all tools/side_by_side.ts GO_BINARY
 * ```
 *
 * GO_BINARY is the Go service built from its repository (github.com/VEVO/kubernetes-pod-discovery,
 * commit 0424d08, `go build .` with its go.sum). Under Go 1.26 its pinned
 * github.com/ugorji/go (2015) panics at start ("encoding alphabet includes duplicate symbols":
 * a code generator's base64 alphabet ending in `__`); a `replace` of that module by a copy whose
 * alphabet ends in `_.` makes it start, nothing else changed. Both run in-cluster style with a ServiceAccount token: the
 * Go one in a private mount namespace (`unshare -m`, root only) whose tmpfs over /run holds the
 * token where its client-go looks for it, so nothing outside is written. The test control plane
 * runs no Endpoints controller, so the tool writes the v1 Endpoints object itself for a Service
 * without selector; the EndpointSlice mirroring controller makes the slices this sidecar reads
 * (its propagation includes that controller's delay). Measured: idle VmRSS with 100 endpoints,
 * write → served, recovery after a 20 s API server stop, recovery after the Role is granted,
 * sequential GET /endpoints/ rate. About 3 minutes.
 *
 * @module
 */
import { startAPIServer, stopAPIServer } from "../tests/support/cluster/faults.ts";
import { createNamespace, createService } from "../tests/support/cluster/fixtures.ts";
import { kubeOk } from "../tests/support/cluster/http.ts";
import { grantRole } from "../tests/support/cluster/rbac.ts";
import { sleep } from "../tests/support/cluster/wait.ts";
import {
  DISCOVERY_RULES,
  type PodMount,
  podMount,
  spawnSidecar,
} from "../tests/support/sidecar.ts";

/** What the Go service's Role grants: the Endpoints object. */
const GO_RULES = [{ apiGroups: [""], resources: ["endpoints"], verbs: ["get"] }];
/** How long a change may take before it counts as never served. */
const GIVE_UP_MS = 60_000;
/** Idle spell before memory is read. */
const IDLE_MS = 20_000;

const goBinary = Deno.args[0];
if (!goBinary) {
  console.error("Usage: tools/side_by_side.ts GO_BINARY (the Go kubernetes-pod-discovery)");
  Deno.exit(2);
}

/** One running service under test: its base URL and process id. */
interface Running {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function startGo(mount: PodMount, ns: string): Promise<Running> {
  const port = freePort();
  const sa = "/run/secrets/kubernetes.io/serviceaccount";
  // Its client-go logs with glog, which writes files into $TMPDIR (else the shared /tmp):
  // a directory of its own, removed when it stops.
  const tmp = await Deno.makeTempDir({ prefix: "kpd-side-by-side-go-" });
  const child = new Deno.Command("unshare", {
    args: [
      "-m",
      "--propagation",
      "private",
      "sh",
      "-c",
      `mount -t tmpfs tmpfs /run && mkdir -p ${sa} && cp "$SA_DIR"/* ${sa}/ && exec "$GO_BINARY"`,
    ],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      TMPDIR: tmp,
      SA_DIR: mount.dir,
      GO_BINARY: goBinary!,
      KUBERNETES_SERVICE_HOST: mount.env.KUBERNETES_SERVICE_HOST!,
      KUBERNETES_SERVICE_PORT: mount.env.KUBERNETES_SERVICE_PORT!,
      KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "web",
      KUBERNETES_POD_DISCOVERY_NAMESPACE: ns,
      KUBERNETES_POD_DISCOVERY_LISTEN_PORT: String(port),
    },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* exited */ }
    await child.status;
    await Deno.remove(tmp, { recursive: true });
  };
  for (let i = 0;; i++) {
    try {
      await (await fetch(`${url}/health/`)).body?.cancel();
      break;
    } catch {
      // A Go service that never answers would read as "never served" in every figure.
      if (i === 100) {
        await stop();
        throw new Error(`${goBinary} did not answer on ${url}/health/ within 10 s`);
      }
      await sleep(100);
    }
  }
  return { url, pid: child.pid, stop };
}

async function startOurs(mount: PodMount, ns: string): Promise<Running> {
  const s = await spawnSidecar({
    env: {
      ...mount.env,
      KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "web",
      KUBERNETES_POD_DISCOVERY_NAMESPACE: ns,
    },
  });
  return { url: s.url, pid: s.pid, stop: async () => void await s.stop() };
}

/** The Endpoints object of `n` ready addresses 10.251.x.y, the first `notReady` not ready. */
function endpointsOf(n: number, notReady: number) {
  const addr = (i: number) => ({ ip: `10.251.${i >> 8}.${(i & 255) + 1}` });
  const all = Array.from({ length: n }, (_, i) => addr(i));
  return {
    apiVersion: "v1",
    kind: "Endpoints",
    metadata: { name: "web" },
    subsets: [{
      addresses: all.slice(notReady),
      notReadyAddresses: notReady ? all.slice(0, notReady) : undefined,
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    }],
  };
}

async function writeEndpoints(ns: string, n: number, notReady: number): Promise<void> {
  await kubeOk("PUT", `/api/v1/namespaces/${ns}/endpoints/web`, { body: endpointsOf(n, notReady) });
}

/** Ready addresses /endpoints/ serves, or -1 when it does not answer 200. */
async function readyCount(url: string): Promise<number> {
  try {
    const r = await fetch(`${url}/endpoints/`);
    if (r.status !== 200) {
      await r.body?.cancel();
      return -1;
    }
    const body = await r.json();
    return (body.subsets ?? []).reduce(
      (a: number, s: { addresses?: unknown[] }) => a + (s.addresses?.length ?? 0),
      0,
    );
  } catch {
    return -1;
  }
}

/** Milliseconds from `since` until each service serves `want` ready addresses (undefined: not
 * within GIVE_UP_MS). */
async function whenServed(
  services: Record<string, Running>,
  want: number,
  since: number,
): Promise<Record<string, number | undefined>> {
  const out: Record<string, number | undefined> = {};
  await Promise.all(
    Object.entries(services).map(async ([name, s]) => {
      while (Date.now() - since < GIVE_UP_MS) {
        if (await readyCount(s.url) === want) {
          out[name] = Date.now() - since;
          return;
        }
        await sleep(10);
      }
    }),
  );
  return out;
}

function vmRssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) / 1024;
}

async function rate(url: string, ms: number): Promise<number> {
  let n = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await (await fetch(`${url}/endpoints/`)).arrayBuffer();
    n++;
  }
  return n / (ms / 1000);
}

const fmt = (ms: number | undefined) =>
  ms === undefined ? `not within ${GIVE_UP_MS / 1000} s` : `${ms} ms`;

const ns = await createNamespace("side");
await createService(ns, "web", {
  selector: null,
  ports: [{ name: "http", port: 80, targetPort: 8080 }],
});
await kubeOk("POST", `/api/v1/namespaces/${ns}/endpoints`, { body: endpointsOf(100, 0) });
const goMount = await podMount(ns, { rules: GO_RULES });
const ourMount = await podMount(ns, { rules: DISCOVERY_RULES });
const services = { go: await startGo(goMount, ns), ours: await startOurs(ourMount, ns) };
try {
  const up = await whenServed(services, 100, Date.now());
  console.log(`serving 100: go ${fmt(up.go)}, ours ${fmt(up.ours)} after start`);
  await sleep(IDLE_MS);
  console.log(
    `idle VmRSS, 100 endpoints: go ${vmRssMb(services.go.pid).toFixed(1)} MB, ours ${
      vmRssMb(services.ours.pid).toFixed(1)
    } MB (ours from source, deno run)`,
  );
  for (const [name, s] of Object.entries(services)) {
    console.log(
      `sequential GET /endpoints/ for 3 s: ${name} ${(await rate(s.url, 3000)).toFixed(0)}/s`,
    );
  }
  for (let i = 1; i <= 5; i++) {
    const t = Date.now();
    await writeEndpoints(ns, 100, i % 2);
    const w = await whenServed(services, 100 - (i % 2), t);
    console.log(`write ${i} → served: go ${fmt(w.go)}, ours ${fmt(w.ours)}`);
  }
  await stopAPIServer();
  await sleep(20_000);
  await startAPIServer();
  const back = Date.now();
  await writeEndpoints(ns, 100, 3);
  const r = await whenServed(services, 97, back);
  console.log(
    `after a 20 s API server stop, a change made on its return served: go ${fmt(r.go)}, ours ${
      fmt(r.ours)
    }`,
  );
} finally {
  await services.go.stop();
  await services.ours.stop();
  await goMount.remove();
  await ourMount.remove();
}

// RBAC: both start without their rule; it is granted after 30 s.
const rbac = { go: await podMount(ns, { rules: [] }), ours: await podMount(ns, { rules: [] }) };
const noRole = { go: await startGo(rbac.go, ns), ours: await startOurs(rbac.ours, ns) };
try {
  await writeEndpoints(ns, 100, 0);
  await sleep(30_000);
  const t = Date.now();
  await grantRole(ns, { kind: "ServiceAccount", name: rbac.go.serviceAccount }, GO_RULES);
  await grantRole(ns, { kind: "ServiceAccount", name: rbac.ours.serviceAccount }, DISCOVERY_RULES);
  const g = await whenServed(noRole, 100, t);
  console.log(
    `after 30 s without the Role, served after the grant: go ${fmt(g.go)}, ours ${fmt(g.ours)}`,
  );
} finally {
  await noRole.go.stop();
  await noRole.ours.stop();
  await rbac.go.remove();
  await rbac.ours.remove();
}
