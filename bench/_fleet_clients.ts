/**
 * The clients of the fleet scenario (bench/fleet.ts), behind one interface that answers "when
 * did each of you first see this address in the Service?": worker processes of reflectors or
 * pollers (bench/fleet_worker.ts), real sidecars followed with blocking queries, and the bench's
 * own watch on the mirrored EndpointSlice (the API server and mirroring controller's part).
 *
 * @module
 */
import { openWatch } from "../tests/support/cluster/watch.ts";
import { childEnv } from "../tests/support/sidecar.ts";
import type { Context } from "./_context.ts";
import { clusterSlicesPath } from "./_fixtures.ts";
import { startSidecar } from "./_processes.ts";
import { now, sleep } from "./util.ts";

/** The fleet's Service. */
export const SERVICE = "fleet";
/** The Go service's polling period. */
export const POLL_PERIOD_MS = 5000;
const WORKER = new URL("./fleet_worker.ts", import.meta.url).pathname;
/** Addresses a change writes are 10.250.x.y. */
const MARKERS = /10\.250\.\d+\.\d+/g;

/** A group of clients. */
export interface Observers {
  count: number;
  /** When each client first saw `ip`, waiting up to `timeoutMs` for all of them. */
  times(ip: string, timeoutMs: number): Promise<number[]>;
  stop(): Promise<void>;
}

/** Records the first time each of `count` clients saw each marker address. */
class Seen {
  #seen = new Map<string, number[]>();
  /** Called by client `mine` (its own set) with a text holding addresses, at time t. */
  add(mine: Set<string>, text: string, t: number): void {
    for (const ip of text.match(MARKERS) ?? []) {
      if (mine.has(ip)) continue;
      mine.add(ip);
      this.#seen.set(ip, [...this.#seen.get(ip) ?? [], t]);
    }
  }
  async wait(ip: string, count: number, timeoutMs: number): Promise<number[]> {
    const deadline = now() + timeoutMs;
    while ((this.#seen.get(ip)?.length ?? 0) < count && now() < deadline) await sleep(5);
    return this.#seen.get(ip) ?? [];
  }
}
/** A fleet_worker.ts process of `count` reflectors (watch) or pollers (poll). */
export async function startWorker(
  ctx: Context,
  mode: "watch" | "poll",
  count: number,
  ns: string,
  env: Record<string, string>,
): Promise<Observers> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      WORKER,
      `--mode=${mode}`,
      `--count=${count}`,
      `--namespace=${ns}`,
      `--service=${SERVICE}`,
      `--period-ms=${POLL_PERIOD_MS}`,
    ],
    clearEnv: true,
    env: childEnv(env),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const next = async (): Promise<Record<string, unknown>> => {
    while (!buf.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`fleet worker (${mode}) exited`);
      buf += value;
    }
    const i = buf.indexOf("\n");
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    return JSON.parse(line);
  };
  const writer = child.stdin.getWriter();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await writer.close().catch(() => {});
    try {
      child.kill("SIGTERM");
    } catch {
      // exited
    }
    await child.status;
    await lines.cancel().catch(() => {});
  };
  ctx.cleanups.push(stop);
  const ready = await next();
  if (ready.ready !== count) throw new Error(`fleet worker: ${ready.ready} of ${count} ready`);
  return {
    count,
    async times(ip, timeoutMs) {
      await writer.write(new TextEncoder().encode(JSON.stringify({ await: ip, timeoutMs }) + "\n"));
      return (await next()).times as number[];
    },
    stop,
  };
}

/** Real sidecars: a blocking query each, noting when an answer first held the address. */
export async function startSidecars(
  ctx: Context,
  count: number,
  ns: string,
  env: Record<string, string>,
): Promise<Observers> {
  const seen = new Seen();
  const loops: Promise<void>[] = [];
  const stops: (() => Promise<void>)[] = [];
  const ac = new AbortController();
  for (let i = 0; i < count; i++) {
    const sc = await startSidecar(ctx, ctx.variants[0]!, {
      env: { ...env, KUBERNETES_POD_DISCOVERY_SERVICE_NAME: SERVICE },
    });
    if (sc.readyMs === undefined) throw new Error(`fleet sidecar not ready: ${sc.stderr()}`);
    stops.push(sc.stop);
    loops.push((async () => {
      const mine = new Set<string>();
      let index = 0;
      while (!ac.signal.aborted) {
        try {
          const path = `/v1/services/${ns}/${SERVICE}?index=${index}&wait=60s`;
          const r = await fetch(sc.url + path, { signal: ac.signal });
          const text = await r.text();
          const t = now();
          index = Number(r.headers.get("x-discovery-index") ?? index);
          seen.add(mine, text, t);
        } catch {
          if (!ac.signal.aborted) await sleep(100);
        }
      }
    })());
  }
  return {
    count,
    times: (ip, timeoutMs) => seen.wait(ip, count, timeoutMs),
    async stop() {
      ac.abort();
      await Promise.all(loops);
      for (const s of stops) await s();
    },
  };
}

/**
 * The bench's own cluster-scoped watch on the Service's slices (not counted as a fleet watch):
 * when the mirroring controller's write of each change arrived.
 */
export async function mirrorWatch(ns: string): Promise<Observers> {
  const seen = new Seen();
  const mine = new Set<string>();
  const stream = await openWatch(clusterSlicesPath(ns, SERVICE));
  const done = (async () => {
    while (true) {
      let ev;
      try {
        ev = await stream.next({ timeoutMs: 3_600_000 });
      } catch {
        return;
      }
      if (!ev) return;
      seen.add(mine, JSON.stringify(ev.object), now());
    }
  })();
  return {
    count: 1,
    times: (ip, timeoutMs) => seen.wait(ip, 1, timeoutMs),
    async stop() {
      await stream.close();
      await done;
    },
  };
}
