/**
 * Runs the sidecar (main.ts) as a child process the way an operator would, with only the
 * environment and flags a test gives it, and reads its JSON log lines from stderr. Used by the
 * tests against the real control plane.
 *
 * @module
 */

/** Permissions the sidecar runs with in tests: the same as `deno task start`. */
export const SIDECAR_PERMISSIONS = ["--allow-net", "--allow-read", "--allow-env"];

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** The whole environment of a child Deno process: only `extra`, PATH and Deno's cache. */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: Deno.env.get("PATH") ?? "",
    // No HOME: the sidecar must not find a kubeconfig the test did not give it. Deno's module
    // cache stays where the test runner's is, so the child does not download again.
    HOME: "/nonexistent",
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    DENO_NO_UPDATE_CHECK: "1",
    ...extra,
  };
}

/** A running sidecar process. */
export interface SidecarProcess {
  /** Base URL of its HTTP server, e.g. http://127.0.0.1:41234. */
  url: string;
  /** Every log line so far, parsed. */
  logs: Record<string, unknown>[];
  /** Raw stderr so far. */
  stderr(): string;
  /** GET (or another method) on the sidecar; the body is read as text. */
  request(
    path: string,
    init?: RequestInit,
    // deno-lint-ignore no-explicit-any -- test bodies are read field by field
  ): Promise<{ status: number; headers: Headers; text: string; json: () => any }>;
  /** Resolves with the first log line matching, waiting up to `timeoutMs`. */
  waitLog(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Sends a signal (default SIGTERM) and resolves with the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
  /** The process's status once it exits. */
  status: Promise<Deno.CommandStatus>;
  /** The OS process id. */
  pid: number;
}

/** Options for {@linkcode spawnSidecar}. */
export interface SpawnOptions {
  /** Flags after main.ts. */
  args?: string[];
  /** The whole environment of the child (nothing is inherited but PATH and HOME=/nonexistent). */
  env?: Record<string, string>;
  /** Wait for the "started" log line (default true). */
  waitStarted?: boolean;
  /** Deno flags before main.ts (default {@linkcode SIDECAR_PERMISSIONS}). */
  denoFlags?: string[];
  /** The program to run instead of main.ts (e.g. the image's bundle). */
  program?: string;
}

/** Starts the sidecar; by default waits until it listens. */
export async function spawnSidecar(options: SpawnOptions = {}): Promise<SidecarProcess> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(options.denoFlags ?? SIDECAR_PERMISSIONS),
      options.program ?? MAIN,
      // Any free port, unless the test sets one itself.
      ...(options.env?.KUBERNETES_POD_DISCOVERY_LISTEN_PORT ? [] : ["--listen-port=0"]),
      ...(options.args ?? []),
    ],
    clearEnv: true,
    env: childEnv(options.env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  let stderr = "";
  const logs: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  const pump = (async () => {
    let buf = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr += chunk;
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          logs.push(JSON.parse(line));
        } catch {
          logs.push({ raw: line });
        }
      }
      for (const w of waiters) w();
    }
  })();
  const stdoutDone = child.stdout.pipeTo(new WritableStream());
  const status = Promise.all([pump, stdoutDone]).then(() => child.status);
  let url = "";
  const waitLog: SidecarProcess["waitLog"] = (match, timeoutMs = 20_000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const hit = logs.find(match);
        if (hit) {
          cleanup();
          resolve(hit);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(`no matching sidecar log line within ${timeoutMs} ms; stderr:\n${stderr}`),
        );
      }, timeoutMs);
      const onExit = () => {};
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
        void onExit;
      };
      waiters.add(check);
      check();
    });
  const proc: SidecarProcess = {
    get url() {
      return url;
    },
    logs,
    stderr: () => stderr,
    async request(path, init) {
      const resp = await fetch(url + path, init);
      const text = await resp.text();
      return { status: resp.status, headers: resp.headers, text, json: () => JSON.parse(text) };
    },
    waitLog,
    async stop(signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // Already exited.
      }
      return (await status).code;
    },
    status,
    pid: child.pid,
  };
  if (options.waitStarted ?? true) {
    const started = await Promise.race([
      waitLog((l) => l.msg === "started"),
      status.then((s) => {
        throw new Error(`sidecar exited with ${s.code} before starting; stderr:\n${stderr}`);
      }),
    ]);
    // A listener on every interface is reached, as a container of the Pod would, on loopback.
    url = `http://${String(started.listen).replace(/^(\[::\]|0\.0\.0\.0):/, "127.0.0.1:")}`;
  }
  return proc;
}

/** The addresses (ready, not ready) a sidecar serves on the Go service's `/endpoints`, each
 * sorted; none while it answers anything but 200. */
export async function servedAddresses(
  sidecar: SidecarProcess,
): Promise<{ ready: string[]; notReady: string[] }> {
  const r = await sidecar.request("/endpoints");
  if (r.status !== 200) return { ready: [], notReady: [] };
  const subsets = (r.json().subsets ?? []) as {
    addresses?: { ip: string }[];
    notReadyAddresses?: { ip: string }[];
  }[];
  const ips = (k: "addresses" | "notReadyAddresses") =>
    subsets.flatMap((s) => (s[k] ?? []).map((a) => a.ip)).sort();
  return { ready: ips("addresses"), notReady: ips("notReadyAddresses") };
}

/** The Role rule the sidecar needs: read EndpointSlices. */
export const DISCOVERY_RULES = [{
  apiGroups: ["discovery.k8s.io"],
  resources: ["endpointslices"],
  verbs: ["get", "list", "watch"],
}];

/** A service-account mount as the kubelet makes it, in a temp dir, and the env of a pod. */
export interface PodMount {
  /** Directory holding token, ca.crt and namespace. */
  dir: string;
  /** The environment a pod's container gets, plus the mount's location. */
  env: Record<string, string>;
  /** The ServiceAccount's name. */
  serviceAccount: string;
  /** The token written to the mount. */
  token: string;
  /** Writes a new token into the mount, as the kubelet's rotation does. */
  writeToken(token: string): Promise<void>;
  /** Removes the temp dir. */
  remove(): Promise<void>;
}

/** Options for {@linkcode podMount}. */
export interface PodMountOptions {
  /** API server URL the pod sees (e.g. a fault proxy's); default the control plane's. */
  server?: string;
  /** Role rules of the ServiceAccount; default {@linkcode DISCOVERY_RULES}; [] for none. */
  rules?: typeof DISCOVERY_RULES;
  /** ServiceAccount name; default a unique one. */
  serviceAccount?: string;
}

/** Creates a ServiceAccount (with a Role), mints its token, and lays out the pod's mount. */
export async function podMount(ns: string, options: PodMountOptions = {}): Promise<PodMount> {
  const { createServiceAccount, mintToken } = await import("./cluster/rbac.ts");
  const { testCluster } = await import("./cluster/http.ts");
  const { uniqueName } = await import("./cluster/wait.ts");
  const sa = options.serviceAccount ?? uniqueName("sidecar");
  const rules = options.rules ?? DISCOVERY_RULES;
  await createServiceAccount(ns, sa, rules.length ? { rules } : {});
  const token = await mintToken(ns, sa);
  const dir = await Deno.makeTempDir({ prefix: "kpd-sa-" });
  await Deno.writeTextFile(`${dir}/token`, token);
  await Deno.writeTextFile(`${dir}/namespace`, ns);
  await Deno.writeTextFile(`${dir}/ca.crt`, testCluster().caPem);
  const url = new URL(options.server ?? testCluster().server);
  return {
    dir,
    serviceAccount: sa,
    token,
    env: {
      KUBERNETES_SERVICE_HOST: url.hostname,
      KUBERNETES_SERVICE_PORT: url.port,
      KUBERNETES_POD_DISCOVERY_SERVICE_ACCOUNT_DIR: dir,
    },
    async writeToken(t) {
      // The kubelet swaps the file atomically; so do we.
      await Deno.writeTextFile(`${dir}/token.tmp`, t);
      await Deno.rename(`${dir}/token.tmp`, `${dir}/token`);
    },
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
