/**
 * The container image (Dockerfile, image/files.txt, image/deno-flags.txt, tools/compile.sh,
 * tools/image_files.sh): the Dockerfile ships exactly the listed files, the baked permissions are
 * exactly what the sidecar needs, and the sidecar runs from exactly that file set.
 *
 * `deno compile` cannot run here (it downloads its runtime base, denort, from Deno's site), so the
 * run uses the `deno` binary in the executable's place: same build, same libraries (the test
 * checks them with ldd), running the same bundled JavaScript with the same baked flags. It runs
 * under chroot, as the image's user 65532, with nothing else in its root than the image's files,
 * the bundle and the service-account mount a kubelet would add, against the real API server.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  createNamespace,
  createPods,
  createService,
  waitForEndpointSlices,
} from "./support/cluster/fixtures.ts";
import { testCluster } from "./support/cluster/http.ts";
import { createServiceAccount, mintToken } from "./support/cluster/rbac.ts";
import { waitFor } from "./support/cluster/wait.ts";
import { DISCOVERY_RULES } from "./support/sidecar.ts";
import { SETTINGS } from "../lib/config.ts";
import { STORE_VARS } from "../lib/trust.ts";
import { LIVE_TEST as T } from "./support/options.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const EXECUTABLE = "/kubernetes-pod-discovery";
const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const IMAGE_USER = 65532;
/** chroot(8); it needs root, as CI and the dev machines run. */
const CHROOT = ["/usr/sbin/chroot", "/usr/bin/chroot"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});
const CAN_CHROOT = CHROOT !== undefined && Deno.uid() === 0;
const DENO_VERSION = Deno.readTextFileSync(new URL("../.deno-version", import.meta.url)).trim();
/** The Deno cache the tests' deno uses (denort is cached under dl/release there once fetched). */
const DENO_DIR = (JSON.parse(
  new TextDecoder().decode(
    new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stderr: "null" }).outputSync()
      .stdout,
  ),
) as { denoDir: string }).denoDir;
const CACHED_DENORT = `${DENO_DIR}/dl/release/v${DENO_VERSION}/denort-x86_64-unknown-linux-gnu.zip`;
/** Where the real runtime base of a compiled executable is: DENORT_BIN, or Deno's cache. */
const DENORT: { bin?: string } | undefined = Deno.env.get("DENORT_BIN")
  ? { bin: Deno.env.get("DENORT_BIN") }
  : (() => {
    try {
      Deno.statSync(CACHED_DENORT);
      return {};
    } catch {
      return undefined;
    }
  })();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], env?: Record<string, string>): Promise<Run> {
  const out = await new Deno.Command(cmd, {
    args,
    env,
    clearEnv: env !== undefined,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** Lines of a list file without comments and blank lines. */
function listLines(text: string): string[] {
  return text.split("\n").map((l) => l.replace(/#.*/, "").trim()).filter((l) => l !== "");
}

/** The Dockerfile's instructions per stage: continuation lines joined, comments dropped. */
function dockerfileStages(text: string): { from: string; instructions: string[] }[] {
  const instructions: string[] = [];
  let current = "";
  for (const raw of text.split("\n")) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.trim();
    if (line.endsWith("\\")) {
      current += line.slice(0, -1).trim() + " ";
      continue;
    }
    current += line;
    if (current.trim() !== "") instructions.push(current.trim());
    current = "";
  }
  const stages: { from: string; instructions: string[] }[] = [];
  for (const ins of instructions) {
    if (/^FROM\s/i.test(ins)) stages.push({ from: ins, instructions: [] });
    else stages.at(-1)?.instructions.push(ins);
  }
  return stages;
}

/** The Deno flags baked into the executable, as tools/compile.sh reads them. */
async function bakedFlags(): Promise<string[]> {
  return listLines(await Deno.readTextFile(`${ROOT}/image/deno-flags.txt`));
}

/** Lays out the image's files in a new temp dir with `deno` as the executable; returns it. */
async function assembleRoot(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kpd-image-" });
  const root = `${dir}/root`;
  const r = await run(`${ROOT}/tools/image_files.sh`, ["assemble", root, Deno.execPath()]);
  assert.equal(r.code, 0, `tools/image_files.sh assemble failed:\n${r.stderr}`);
  return root;
}

/** Every file (not directory) under `root`, as absolute paths inside it. */
async function filesUnder(root: string, dir = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${root}${dir}`)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await filesUnder(root, p));
    else out.push(p);
  }
  return out.sort();
}

/**
 * Writes the service-account mount into `root` as the kubelet lays it out: the files in a
 * timestamped directory, `..data` pointing at it, and token, ca.crt and namespace as symlinks
 * through `..data`, all readable by the image's user.
 */
async function writeMount(root: string, files: Record<string, string>): Promise<void> {
  const dir = `${root}${SA_DIR}`;
  const stamp = "..2026_01_01_00_00_00.000000001";
  await Deno.mkdir(`${dir}/${stamp}`, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${stamp}/${name}`, text);
    await Deno.chmod(`${dir}/${stamp}/${name}`, 0o444);
    await Deno.symlink(`..data/${name}`, `${dir}/${name}`);
  }
  await Deno.symlink(stamp, `${dir}/..data`);
  for (let d = dir; d.length > root.length; d = d.replace(/\/[^/]*$/, "")) {
    await Deno.chmod(d, 0o755);
  }
  await Deno.chmod(`${dir}/${stamp}`, 0o755);
}

Deno.test("the Dockerfile's scratch stage copies exactly the files of image/files.txt", async () => {
  const stages = dockerfileStages(await Deno.readTextFile(`${ROOT}/Dockerfile`));
  const final = stages.at(-1)!;
  assert.match(final.from, /^FROM --platform=linux\/amd64 scratch$/i);
  const expected = (await run(`${ROOT}/tools/image_files.sh`, ["dockerfile"])).stdout
    .trim().split("\n");
  const copies = final.instructions.filter((i) => /^(COPY|ADD)\s/i.test(i));
  assert.deepEqual(
    copies,
    expected,
    "the final stage's COPY lines differ from image/files.txt: paste `tools/image_files.sh dockerfile`",
  );
  // The executable is the entrypoint, in exec form; the user is numeric and not root.
  assert.ok(listLines(await Deno.readTextFile(`${ROOT}/image/files.txt`)).includes(EXECUTABLE));
  assert.deepEqual(final.instructions.filter((i) => /^ENTRYPOINT\s/i.test(i)), [
    `ENTRYPOINT ["${EXECUTABLE}"]`,
  ]);
  assert.deepEqual(final.instructions.filter((i) => /^USER\s/i.test(i)), [
    `USER ${IMAGE_USER}:${IMAGE_USER}`,
  ]);
  assert.equal(final.instructions.filter((i) => /^(RUN|CMD|SHELL)\s/i.test(i)).length, 0);
});

Deno.test("the Dockerfile builds on this machine's Debian release with the Deno of .deno-version, and runs the executable from the image's files once", async () => {
  const stages = dockerfileStages(await Deno.readTextFile(`${ROOT}/Dockerfile`));
  assert.equal(stages.length, 2);
  const build = stages[0]!;
  // image/files.txt and the ldd checks below are this machine's release: the build stage must be
  // the same Debian major release (12, bookworm), pinned to an exact point release.
  const m =
    /^FROM --platform=linux\/amd64 debian:(\d+)\.(\d+)-slim(@sha256:[0-9a-f]{64})? AS build$/
      .exec(build.from);
  assert.ok(m, `the build stage's base is not an exact Debian tag: ${build.from}`);
  const here = (await Deno.readTextFile("/etc/debian_version")).trim().split(".")[0];
  assert.equal(m[1], here, "the build stage's Debian release differs from the tested one");
  // Deno from tools/deno (the npm package at .deno-version), never another deno.
  const copies = build.instructions.filter((i) => i.startsWith("COPY "));
  assert.ok(copies.some((c) => c.split(/\s+/).includes(".deno-version")));
  assert.ok(copies.some((c) => c.split(/\s+/).includes("tools/deno")));
  const runs = build.instructions.filter((i) => i.startsWith("RUN "));
  assert.ok(runs.every((r) => !/\bDENO=/.test(r)), "the build must use tools/deno");
  assert.ok(
    runs.some((r) =>
      r.includes("tools/compile.sh /rootfs/kubernetes-pod-discovery") &&
      r.includes("tools/image_files.sh assemble /rootfs /rootfs/kubernetes-pod-discovery") &&
      r.includes(
        `chroot --userspec=${IMAGE_USER}:${IMAGE_USER} /rootfs ${EXECUTABLE} --help`,
      )
    ),
    "the build stage must compile with tools/compile.sh, assemble /rootfs with " +
      "tools/image_files.sh and run the executable from /rootfs as the image's user",
  );
  // What the build stage copies in must pass the .dockerignore.
  const ignore = listLines(await Deno.readTextFile(`${ROOT}/.dockerignore`));
  const allowed = ignore.filter((l) => l.startsWith("!")).map((l) => l.slice(1));
  for (const copy of build.instructions.filter((i) => i.startsWith("COPY "))) {
    for (const src of copy.split(/\s+/).slice(1, -1)) {
      assert.ok(allowed.includes(src), `${src} is copied but excluded by .dockerignore`);
    }
  }
});

Deno.test("the baked --allow-env names exactly the variables the sidecar reads", async () => {
  const flags = await bakedFlags();
  const allowEnv = flags.filter((f) => f.startsWith("--allow-env"));
  assert.equal(allowEnv.length, 1);
  const baked = allowEnv[0]!.replace(/^--allow-env=/, "").split(",").sort();
  // The root-store variables are written, not read: the sidecar empties Deno's root store so only
  // the cluster's ca.crt vouches for the API server (lib/trust.ts).
  const read = new Set([...Object.values(SETTINGS).flatMap((s) => s.env), ...STORE_VARS]);
  for await (const e of Deno.readDir(`${ROOT}/lib`)) {
    if (!e.name.endsWith(".ts")) continue;
    const text = await Deno.readTextFile(`${ROOT}/lib/${e.name}`);
    for (const m of text.matchAll(/\benv(?:\.get)?\("([A-Z0-9_]+)"\)/g)) read.add(m[1]!);
  }
  assert.deepEqual(baked, [...read].sort());
});

Deno.test("the baked permissions allow nothing but the network, the mount and those variables", async () => {
  const flags = await bakedFlags();
  const permissions = flags.filter((f) => /^--(allow|deny)-|^-A$|^--no-prompt$/.test(f));
  assert.deepEqual(
    permissions.map((f) => f.replace(/^--allow-env=.*/, "--allow-env=...")).sort(),
    [
      "--allow-env=...",
      "--allow-net",
      `--allow-read=${SA_DIR}`,
      "--deny-import",
      "--no-prompt",
    ],
  );
  const v8 = flags.filter((f) => f.startsWith("--v8-flags="));
  assert.deepEqual(v8, ["--v8-flags=--max-heap-size=48"]);
});

/**
 * The environment for tools/compile.sh: this process's (proxies and CA settings reach the npm
 * registry with it), without CI and DENORT_BIN, with DENO the deno running the tests, plus `extra`.
 */
function compileEnv(extra: Record<string, string>): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.CI;
  delete env.DENORT_BIN;
  return { ...env, DENO: Deno.execPath(), ...extra };
}

/** Reads the metadata and file list `deno compile` appended to `exe` (made on a base of
 * `baseSize` bytes) and checks they are exactly image/deno-flags.txt and the bundle. */
async function assertBaked(exe: Uint8Array, baseSize: number | undefined): Promise<void> {
  // About 2.8 MB over the base: the bundle, the metadata and the ELF's alignment. With
  // @kubernetes/client-node embedded it would be over 70 MB. (Unknown base: not checked.)
  if (baseSize !== undefined) {
    assert.ok(exe.length - baseSize < 10_000_000, `${exe.length - baseSize} bytes over the base`);
  }
  const tail = new TextDecoder("latin1").decode(exe.subarray(Math.max(0, exe.length - 4e6)));
  const start = tail.indexOf('{"argv":');
  assert.ok(start >= 0, "the executable's metadata");
  const metadata = JSON.parse(tail.slice(start, tail.indexOf("\0", start))) as {
    permissions: Record<string, unknown>;
    v8_flags: string[];
    code_cache_key: unknown;
    entrypoint_key: string;
  };
  const flags = await bakedFlags();
  const env = flags.find((f) => f.startsWith("--allow-env="))!.slice("--allow-env=".length);
  const p = metadata.permissions;
  assert.deepEqual((p.allow_env as string[]).sort(), env.split(",").sort());
  assert.deepEqual(p.allow_read, [SA_DIR]);
  assert.deepEqual(p.allow_net, []);
  for (const k of ["allow_run", "allow_write", "allow_ffi", "allow_sys"]) {
    assert.equal(p[k], null, k);
  }
  assert.deepEqual(p.deny_import, []);
  assert.equal(p.prompt, false);
  assert.ok(metadata.v8_flags.includes("--max-heap-size=48"), String(metadata.v8_flags));
  assert.equal(metadata.code_cache_key, null);
  assert.equal(metadata.entrypoint_key, "kubernetes-pod-discovery.js");
  const embedded = [...tail.matchAll(/\{"(File|Dir|Symlink)":\{"n":"([^"]+)"/g)]
    .map((m) => `${m[1]} ${m[2]}`);
  assert.deepEqual(embedded, ["File kubernetes-pod-discovery.js"]);
}

Deno.test(
  "tools/compile.sh bakes exactly image/deno-flags.txt into the executable and embeds only the bundle",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "kpd-compile-" });
    try {
      // The deno binary as the base instead of denort, which cannot be downloaded here: the
      // metadata and files appended to the base are the same.
      const r = await run(
        `${ROOT}/tools/compile.sh`,
        [`${dir}/kubernetes-pod-discovery`],
        compileEnv({ DENORT_BIN: Deno.execPath() }),
      );
      assert.equal(r.code, 0, r.stderr);
      const exe = await Deno.readFile(`${dir}/kubernetes-pod-discovery`);
      const base = (await Deno.stat(Deno.execPath())).size;
      await assertBaked(exe, base);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "where denort cannot be downloaded, tools/compile.sh says so in one line: exit 3, or 0 under CI=true",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "kpd-compile-" });
    try {
      // A proxy nobody listens on: Deno's download site is unreachable even where it is not.
      const offline: Record<string, string> = {
        HTTPS_PROXY: "http://127.0.0.1:9",
        https_proxy: "http://127.0.0.1:9",
        NO_PROXY: "",
        no_proxy: "",
      };
      const out = `${dir}/kubernetes-pod-discovery`;
      // Online first, so that the bundling step finds esbuild in the cache when offline.
      const warm = await run(
        `${ROOT}/tools/compile.sh`,
        ["--bundle", `${dir}/b.js`],
        compileEnv({}),
      );
      assert.equal(warm.code, 0, warm.stderr);
      // A Deno cache without denort (the npm packages and esbuild of the real one, nothing of
      // dl/release): wherever denort happens to be cached, the download is still attempted.
      const denoDir = `${dir}/deno_dir`;
      await Deno.mkdir(`${denoDir}/dl`, { recursive: true });
      await Deno.symlink(`${DENO_DIR}/npm`, `${denoDir}/npm`);
      for await (const e of Deno.readDir(`${DENO_DIR}/dl`)) {
        if (e.name !== "release") {
          await Deno.symlink(`${DENO_DIR}/dl/${e.name}`, `${denoDir}/dl/${e.name}`);
        }
      }
      Object.assign(offline, { DENO_DIR: denoDir });
      const dev = await run(`${ROOT}/tools/compile.sh`, [out], compileEnv(offline));
      assert.equal(dev.code, 3, dev.stderr);
      assert.match(
        dev.stderr,
        /^tools\/compile\.sh: deno compile cannot download its runtime base \(denort\)[^\n]*\n$/,
      );
      const ci = await run(
        `${ROOT}/tools/compile.sh`,
        [out],
        compileEnv({ ...offline, CI: "true" }),
      );
      assert.equal(ci.code, 0, ci.stderr);
      assert.match(ci.stderr, /^tools\/compile\.sh: skipped: [^\n]*denort[^\n]*\n$/);
      await assert.rejects(Deno.stat(out));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("the image's libraries are exactly those ldd finds for the Deno runtime", async () => {
  const root = await assembleRoot();
  try {
    const listed = listLines(await Deno.readTextFile(`${ROOT}/image/files.txt`)).sort();
    assert.deepEqual(await filesUnder(root), listed);
    const ldd = await run("ldd", [Deno.execPath()]);
    const linked = [...ldd.stdout.matchAll(/(?:=> )?(\/\S+) \(0x/g)].map((m) => m[1]!).sort();
    assert.deepEqual(linked, listed.filter((p) => /\.so(\.\d+)*$/.test(p)));
  } finally {
    await Deno.remove(root.replace(/\/root$/, ""), { recursive: true });
  }
});

Deno.test("tools/image_files.sh refuses a list that lacks a library the runtime links against", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kpd-image-" });
  try {
    const list = (await Deno.readTextFile(`${ROOT}/image/files.txt`))
      .replace(/^\/lib\/x86_64-linux-gnu\/libgcc_s\.so\.1$/m, "");
    await Deno.writeTextFile(`${dir}/files.txt`, list);
    const r = await run(`${ROOT}/tools/image_files.sh`, [
      "assemble",
      `${dir}/root`,
      Deno.execPath(),
    ], { PATH: Deno.env.get("PATH") ?? "", IMAGE_FILES: `${dir}/files.txt` });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /linked, not listed: \/lib\/x86_64-linux-gnu\/libgcc_s\.so\.1/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "in the image's root without libgcc_s or without the loader, the runtime does not start",
  ignore: !CAN_CHROOT,
  ...T,
  fn: async () => {
    const root = await assembleRoot();
    try {
      // The check below is only worth something if the intact root starts the runtime.
      const ok = await run(CHROOT!, [
        `--userspec=${IMAGE_USER}:${IMAGE_USER}`,
        root,
        EXECUTABLE,
        "--version",
      ], {});
      assert.equal(ok.code, 0, ok.stderr);
      await Deno.remove(`${root}/lib/x86_64-linux-gnu/libgcc_s.so.1`);
      const noGcc = await run(CHROOT!, [
        `--userspec=${IMAGE_USER}:${IMAGE_USER}`,
        root,
        EXECUTABLE,
        "--version",
      ], {});
      assert.notEqual(noGcc.code, 0);
      assert.match(noGcc.stderr, /libgcc_s\.so\.1: cannot open shared object file/);
      await Deno.remove(`${root}/lib64/ld-linux-x86-64.so.2`);
      const noLoader = await run(CHROOT!, [
        `--userspec=${IMAGE_USER}:${IMAGE_USER}`,
        root,
        EXECUTABLE,
        "--version",
      ], {});
      assert.notEqual(noLoader.code, 0);
      assert.match(noLoader.stderr, /No such file or directory/);
    } finally {
      await Deno.remove(root.replace(/\/root$/, ""), { recursive: true });
    }
  },
});

Deno.test({
  name:
    "from exactly the image's files under chroot as user 65532, the sidecar serves the endpoints in-cluster and exits 0 on SIGTERM",
  ignore: !CAN_CHROOT,
  ...T,
  fn: async () => {
    const ns = await createNamespace("image");
    await createService(ns, "web");
    await createPods(ns, 2, { labels: { app: "web" }, nodeName: "image-node", prefix: "web" });
    await waitForEndpointSlices(ns, "web", (s) => s.some((x) => (x.endpoints ?? []).length === 2));
    await createServiceAccount(ns, "sidecar", { rules: DISCOVERY_RULES });
    const token = await mintToken(ns, "sidecar");

    const root = await assembleRoot();
    // What the stand-in needs besides the image's files: the program the executable embeds.
    const bundle = "/kubernetes-pod-discovery.js";
    const b = await run(
      `${ROOT}/tools/compile.sh`,
      ["--bundle", `${root}${bundle}`],
      compileEnv({}),
    );
    assert.equal(b.code, 0, b.stderr);
    await Deno.chmod(`${root}${bundle}`, 0o444);
    // And what the kubelet adds: the service-account mount.
    await writeMount(root, { token, "ca.crt": testCluster().caPem, namespace: ns });

    const api = new URL(testCluster().server);
    const child = new Deno.Command(CHROOT!, {
      args: [
        `--userspec=${IMAGE_USER}:${IMAGE_USER}`,
        root,
        EXECUTABLE,
        "run",
        "--no-config",
        ...await bakedFlags(),
        bundle,
      ],
      clearEnv: true,
      // A pod's environment: the API server's address, the sidecar's settings, and HOME=/ as
      // container runtimes set it for a user without a passwd entry.
      env: {
        HOME: "/",
        KUBERNETES_SERVICE_HOST: api.hostname,
        KUBERNETES_SERVICE_PORT: api.port,
        KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "web",
        KUBERNETES_POD_DISCOVERY_LISTEN_PORT: "0",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let stderr = "";
    const pump = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
    })();
    const stdout = new Response(child.stdout).text();
    const logs = () =>
      stderr.split("\n").filter((l) => l.startsWith("{")).map((l) =>
        JSON.parse(l) as Record<string, unknown>
      );
    try {
      let exited: number | undefined;
      child.status.then((s) => exited = s.code);
      const started = await waitFor(
        () => {
          if (exited !== undefined) {
            throw new Error(`the sidecar exited with ${exited} before starting:\n${stderr}`);
          }
          return Promise.resolve(logs().find((l) => l.msg === "started"));
        },
        { message: "the started log line", timeoutMs: 30_000 },
      ).catch((e) => {
        throw new Error(`${(e as Error).message}; stderr:\n${stderr}`);
      });
      const url = `http://${started.listen}`;
      assert.equal(started.mode, "in-cluster");
      // The process is the image's user, not root.
      const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
      assert.match(status, new RegExp(`^Uid:\\s+${IMAGE_USER}\\s+${IMAGE_USER}\\s`, "m"));

      await waitFor(async () => (await (await fetch(`${url}/readyz`)).text()) === "ok", {
        message: "/readyz 200",
      });
      const ready = await fetch(`${url}/readyz`);
      assert.equal(ready.status, 200);
      await ready.body?.cancel();
      const r = await fetch(`${url}/endpoints`);
      assert.equal(r.status, 200);
      const body = await r.json() as {
        metadata: { name: string; namespace: string };
        subsets: { addresses: { ip: string }[] }[];
      };
      assert.equal(body.metadata.name, "web");
      assert.equal(body.metadata.namespace, ns);
      assert.deepEqual(body.subsets[0]!.addresses.map((a) => a.ip).sort(), [
        "10.244.0.1",
        "10.244.0.2",
      ]);
      const live = await fetch(`${url}/livez`);
      assert.equal(live.status, 200);
      await live.body?.cancel();

      child.kill("SIGTERM");
      const { code } = await child.status;
      await pump;
      await stdout;
      assert.equal(code, 0, stderr);
      assert.ok(logs().some((l) => l.msg === "stopped"), stderr);
      assert.doesNotMatch(stderr, /NotCapable|PermissionDenied|Requires \w+ access|backing off/);
      assert.deepEqual(logs().filter((l) => l.level === "error" || l.level === "warn"), []);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await child.status;
      await Deno.remove(root.replace(/\/root$/, ""), { recursive: true });
    }
  },
});

if (!DENORT) {
  console.warn(
    "image_test: the compiled executable is not run here: no denort (set DENORT_BIN to Deno's " +
      `runtime base ${DENO_VERSION}, or have it in ${CACHED_DENORT}); the Docker build runs it`,
  );
}

/** Runs `args` under chroot in `root` as the image's user with exactly `env`. */
function inImage(root: string, args: string[], env: Record<string, string>): Promise<Run> {
  return run(CHROOT!, [`--userspec=${IMAGE_USER}:${IMAGE_USER}`, root, ...args], env);
}

const KUBECONFIG_REFUSED =
  /^kubernetes-pod-discovery: Cannot use kubeconfig \/kubeconfig: this build serves in-cluster mode only; run from source for a kubeconfig\n$/;

Deno.test({
  name:
    "the compiled executable, from exactly the image's files as user 65532, has the baked flags, starts, and refuses a kubeconfig in one line",
  ignore: !DENORT || !CAN_CHROOT,
  ...T,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kpd-compiled-" });
    try {
      const exe = `${dir}/kubernetes-pod-discovery`;
      const env = compileEnv(DENORT!.bin ? { DENORT_BIN: DENORT!.bin } : {});
      const r = await run(`${ROOT}/tools/compile.sh`, [exe], env);
      assert.equal(r.code, 0, r.stderr);
      const base = DENORT!.bin ? (await Deno.stat(DENORT!.bin)).size : undefined;
      await assertBaked(await Deno.readFile(exe), base);
      const root = `${dir}/root`;
      const a = await run(`${ROOT}/tools/image_files.sh`, ["assemble", root, exe]);
      assert.equal(a.code, 0, a.stderr);
      const help = await inImage(root, [EXECUTABLE, "--help"], {});
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /--service-name/);
      const kc = await inImage(root, [EXECUTABLE], {
        HOME: "/",
        KUBECONFIG: "/kubeconfig",
        KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "web",
      });
      assert.equal(kc.code, 2, kc.stderr);
      assert.match(kc.stderr, KUBECONFIG_REFUSED);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "from the image's files with the baked flags, a kubeconfig or no cluster is refused in one line: this build serves in-cluster mode only",
  ignore: !CAN_CHROOT,
  ...T,
  fn: async () => {
    const root = await assembleRoot();
    try {
      const bundle = "/kubernetes-pod-discovery.js";
      const b = await run(
        `${ROOT}/tools/compile.sh`,
        ["--bundle", `${root}${bundle}`],
        compileEnv({}),
      );
      assert.equal(b.code, 0, b.stderr);
      await Deno.chmod(`${root}${bundle}`, 0o444);
      const args = [EXECUTABLE, "run", "--no-config", ...await bakedFlags(), bundle];
      const settings = { HOME: "/", KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "web" };
      const kc = await inImage(root, args, { ...settings, KUBECONFIG: "/kubeconfig" });
      assert.equal(kc.code, 2, kc.stderr);
      assert.match(kc.stderr, KUBECONFIG_REFUSED);
      const none = await inImage(root, args, settings);
      assert.equal(none.code, 2, none.stderr);
      assert.match(
        none.stderr,
        /^kubernetes-pod-discovery: Not in a pod \(KUBERNETES_SERVICE_HOST is unset\), and this build serves in-cluster mode only; run from source for a kubeconfig\n$/,
      );
    } finally {
      await Deno.remove(root.replace(/\/root$/, ""), { recursive: true });
    }
  },
});
