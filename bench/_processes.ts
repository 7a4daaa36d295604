/**
 * The processes a scenario measures: the sidecar (main.ts) in one of two configurations, the
 * shipped one (exactly the flags of image/deno-flags.txt, the V8 heap cap included, as
 * tests/image_test.ts runs its stand-in) or from source (`deno task start`'s permissions), and
 * bench/bare_server.ts, the floor it is measured against, started with the same flags.
 *
 * @module
 */
import { childEnv, SIDECAR_PERMISSIONS } from "../tests/support/sidecar.ts";
import type { Context } from "./_context.ts";
import { freePort, now, sleep } from "./util.ts";

/** How a process is started: the shipped flags, or from source like `deno task start`. */
export type Variant = "shipped" | "source";

const ROOT = new URL("..", import.meta.url).pathname;
const MAIN = `${ROOT}main.ts`;
const BARE = `${ROOT}bench/bare_server.ts`;
/** Where the image reads its service-account mount; the bench's mount is in a temp dir. */
const IMAGE_SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The flags of image/deno-flags.txt, one a line, '#' comments dropped. */
export function bakedFlags(): string[] {
  return Deno.readTextFileSync(`${ROOT}image/deno-flags.txt`).split("\n")
    .map((l) => l.replace(/#.*/, "").trim()).filter((l) => l !== "");
}

/**
 * The Deno flags of a variant. Shipped: the baked flags, the read permission moved from the
 * image's mount path to `readDirs` (the bench cannot write /var/run; the scope is the same: the
 * mount, nothing else). Source: SIDECAR_PERMISSIONS.
 */
export function variantFlags(variant: Variant, readDirs: string[]): string[] {
  if (variant === "source") return SIDECAR_PERMISSIONS;
  return bakedFlags().map((f) =>
    f === `--allow-read=${IMAGE_SA_DIR}` ? `--allow-read=${readDirs.join(",")}` : f
  );
}

/** A child Deno process started by the bench, stopped by the context's cleanups. */
export interface Child {
  pid: number;
  port: number;
  url: string;
  /** Process spawn time (see {@linkcode now}). */
  spawnedAt: number;
  /** Its stderr so far (the sidecar's JSON log lines). */
  stderr(): string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

function spawn(ctx: Context, args: string[], env: Record<string, string>) {
  const spawnedAt = now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    clearEnv: true,
    env: childEnv(env),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const pumpErr = (async () => {
    for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) stderr += c;
  })();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGTERM");
    } catch {
      // exited
    }
    await child.status;
    await pumpErr;
  };
  ctx.cleanups.push(stop);
  return { child, spawnedAt, stderr: () => stderr, stop };
}

/** A sidecar, with when it first answered /readyz and when it said 200. */
export interface Sidecar extends Child {
  variant: Variant;
  /** Spawn → first answer of /readyz. */
  listenMs: number;
  /** Spawn → /readyz 200; undefined when it did not become ready in time. */
  readyMs?: number;
  /** Warnings and errors it logged, parsed. */
  warnings(): Record<string, unknown>[];
}

/** Options for {@linkcode startSidecar}. */
export interface SidecarOptions {
  /** The environment (a pod's: the mount, the API server, settings). */
  env: Record<string, string>;
  /** Flags after main.ts. Default none. */
  args?: string[];
  /** Default 60 s. */
  readyTimeoutMs?: number;
}

/** Spawns main.ts in this variant on a free port and waits for /readyz 200. */
export async function startSidecar(
  ctx: Context,
  variant: Variant,
  options: SidecarOptions,
): Promise<Sidecar> {
  const port = freePort();
  const mount = options.env.KUBERNETES_POD_DISCOVERY_SERVICE_ACCOUNT_DIR ?? IMAGE_SA_DIR;
  const p = spawn(ctx, ["run", ...variantFlags(variant, [mount]), MAIN, ...options.args ?? []], {
    ...options.env,
    KUBERNETES_POD_DISCOVERY_LISTEN_PORT: String(port),
  });
  const url = `http://127.0.0.1:${port}`;
  const t = await waitStatus(`${url}/readyz`, 200, options.readyTimeoutMs ?? 60_000);
  return {
    variant,
    pid: p.child.pid,
    port,
    url,
    spawnedAt: p.spawnedAt,
    stderr: p.stderr,
    stop: p.stop,
    listenMs: t ? t.firstAnswer - p.spawnedAt : NaN,
    readyMs: t ? t.done - p.spawnedAt : undefined,
    warnings: () =>
      p.stderr().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
        .filter((l) => l.level === "warn" || l.level === "error"),
  };
}

/** Waits until GET url answers `status` (polling every 2 ms); when it first answered and did. */
export async function waitStatus(
  url: string,
  status: number,
  timeoutMs: number,
): Promise<{ firstAnswer: number; done: number } | undefined> {
  const deadline = now() + timeoutMs;
  let firstAnswer = 0;
  while (now() < deadline) {
    try {
      const r = await fetch(url, { headers: { "Accept-Encoding": "identity" } });
      await r.body?.cancel();
      const t = now();
      if (!firstAnswer) firstAnswer = t;
      if (r.status === status) return { firstAnswer, done: t };
    } catch {
      // not listening yet
    }
    await sleep(2);
  }
  return undefined;
}

/** Options for {@linkcode startBare}. */
export interface BareOptions {
  /** The body and headers it answers GET /endpoints with. */
  body: string;
  headers: Record<string, string>;
  /** bare_server.ts switches (--icu, --watch=SERVICE). */
  args?: string[];
  /** Environment (a pod's, for --watch). */
  env?: Record<string, string>;
}

/** Starts bench/bare_server.ts with the variant's flags; resolves once it listens. */
export async function startBare(
  ctx: Context,
  variant: Variant,
  options: BareOptions,
): Promise<Child> {
  const dir = await Deno.makeTempDir({ prefix: "kpd-bench-" });
  ctx.cleanups.push(() => Deno.remove(dir, { recursive: true }));
  await Deno.writeTextFile(`${dir}/body.json`, options.body);
  await Deno.writeTextFile(`${dir}/headers.json`, JSON.stringify(options.headers));
  const port = freePort();
  const mount = options.env?.KUBERNETES_POD_DISCOVERY_SERVICE_ACCOUNT_DIR;
  const p = spawn(ctx, [
    "run",
    ...variantFlags(variant, mount ? [dir, mount] : [dir]),
    BARE,
    `--port=${port}`,
    `--body=${dir}/body.json`,
    `--headers=${dir}/headers.json`,
    ...(options.args ?? []),
  ], options.env ?? {});
  const url = `http://127.0.0.1:${port}`;
  if (!await waitStatus(`${url}/endpoints`, 200, 30_000)) {
    throw new Error(`bare_server.ts did not listen in 30 s: ${p.stderr()}`);
  }
  return { pid: p.child.pid, port, url, spawnedAt: p.spawnedAt, stderr: p.stderr, stop: p.stop };
}

/** GETs `path` `n` times with `concurrency` requests in flight, reading every body. */
export async function load(
  url: string,
  n: number,
  options: { concurrency?: number; path?: string } = {},
): Promise<void> {
  const path = options.path ?? "/endpoints";
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const r = await fetch(`${url}${path}`, { headers: { "Accept-Encoding": "identity" } });
      if (r.status !== 200) throw new Error(`GET ${url}${path}: ${r.status}`);
      await r.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
}

/** The sidecar's /endpoints answer: body and the headers a bare server must copy. */
export async function snapshot(
  url: string,
): Promise<{ body: string; headers: Record<string, string> }> {
  const r = await fetch(`${url}/endpoints`, { headers: { "Accept-Encoding": "identity" } });
  const body = await r.text();
  if (r.status !== 200) throw new Error(`GET ${url}/endpoints: ${r.status} ${body}`);
  const headers: Record<string, string> = {};
  for (const [k, v] of r.headers) {
    if (["content-length", "date", "vary", "content-encoding"].includes(k)) continue;
    headers[
      k === "etag" ? "ETag" : k.split("-").map((p) => p[0]!.toUpperCase() + p.slice(1))
        .join("-")
    ] = v;
  }
  return { body, headers };
}
