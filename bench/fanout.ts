/**
 * Fan-out scenario: the sidecar in the shipped configuration (image/deno-flags.txt) with many
 * local clients. Figures: memory per open SSE stream that never reads, memory per waiting
 * blocking query, and per change fanned out to every stream: the time until every reading
 * stream has it and the memory it adds. Run alone, it prints its figures as JSON:
 *
 * ```sh
 * .cache/bin/control-plane up -- tools/deno run -A bench/fanout.ts
 * ```
 *
 * @module
 */
import {
  createNamespace,
  createPods,
  createService,
  setPodReady,
} from "../tests/support/cluster/fixtures.ts";
import { waitFor } from "../tests/support/cluster/wait.ts";
import {
  closeAll,
  pool,
  rawGet,
  readResponse,
  rssBytes,
  shippedFlags,
} from "../tests/support/fanout_load.ts";
import { podMount, spawnSidecar } from "../tests/support/sidecar.ts";
import { SseState, strictReader } from "../tests/support/sse_client.ts";

/** Sizes of {@linkcode runFanout}. */
export interface FanoutOptions {
  /** Open SSE streams that never read (default 950). */
  idleStreams?: number;
  /** Open SSE streams that read, timed per change (default 50). */
  readingStreams?: number;
  /** Changes fanned out (default 50). */
  changes?: number;
  /** Waiting blocking queries (default 10,000). */
  blockingQueries?: number;
}

/** The figures of one run. */
export interface FanoutResults {
  /** RSS when ready, before any client (bytes). */
  readyRssBytes: number;
  /** RSS added per open stream (bytes). */
  bytesPerStream: number;
  /** Per change: ms from the API write returning until every reading stream had it. */
  changeFanoutMs: { p50: number; max: number };
  /** RSS added per change fanned out to all streams, over the run (bytes). */
  bytesPerChange: number;
  /** Peak RSS with the streams and changes (bytes). */
  peakRssBytes: number;
  /** RSS added per waiting blocking query (bytes). */
  bytesPerWaitingQuery: number;
  /** ms from a change until every waiting query had its answer. */
  blockingAnswerMs: number;
  /** The sizes used. */
  sizes: Required<FanoutOptions>;
}

async function sidecarFor(ns: string, args: string[]) {
  const mount = await podMount(ns);
  const sidecar = await spawnSidecar({
    env: mount.env,
    args,
    denoFlags: await shippedFlags(mount.dir),
  });
  return { mount, sidecar, port: Number(new URL(sidecar.url).port) };
}

/** Runs the scenario against the control plane of `control-plane up`. */
export async function runFanout(options: FanoutOptions = {}): Promise<FanoutResults> {
  const sizes: Required<FanoutOptions> = {
    idleStreams: options.idleStreams ?? 950,
    readingStreams: options.readingStreams ?? 50,
    changes: options.changes ?? 50,
    blockingQueries: options.blockingQueries ?? 10_000,
  };
  const ns = await createNamespace("bench-fanout");
  await createService(ns, "web");
  const pods = await createPods(ns, 8, { labels: { app: "web" }, nodeName: "bench-fanout" });
  const streams = await streamsPhase(ns, pods, sizes);
  const blocking = await blockingPhase(ns, pods, sizes.blockingQueries);
  return { ...streams, ...blocking, sizes };
}

async function streamsPhase(ns: string, pods: string[], sizes: Required<FanoutOptions>) {
  const total = sizes.idleStreams + sizes.readingStreams;
  const { mount, sidecar, port } = await sidecarFor(ns, [
    "--service-name=web",
    `--max-watchers=${total}`,
  ]);
  const path = `/v1/watch/${ns}/web`;
  const idle: Deno.TcpConn[] = [];
  const readers: ReturnType<typeof strictReader>[] = [];
  try {
    await waitFor(async () => (await sidecar.request("/readyz")).status === 200);
    const readyRssBytes = await rssBytes(sidecar.pid);
    const states = Array.from({ length: sizes.readingStreams }, () => new SseState());
    for (const s of states) {
      readers.push(strictReader(`${sidecar.url}${path}`, { onMessage: (m) => s.apply(m) }));
    }
    await waitFor(() => Promise.resolve(states.every((s) => s.services.size === 1)));
    for (
      const r of await pool(Array.from({ length: sizes.idleStreams }), 20, () => rawGet(port, path))
    ) {
      idle.push(r.conn);
    }
    const withStreams = await rssBytes(sidecar.pid);
    const fanout: number[] = [];
    let peak = withStreams;
    const ready = pods.map(() => true);
    for (let i = 0; i < sizes.changes; i++) {
      const p = i % pods.length;
      ready[p] = !ready[p];
      await setPodReady(ns, pods[p]!, ready[p]!);
      const t = performance.now();
      const want = ready.filter((r) => r).length;
      await waitFor(
        () =>
          Promise.resolve(
            states.every((s) => s.services.get(`${ns}/web`)?.endpoints.length === want),
          ),
        { intervalMs: 5, timeoutMs: 30_000 },
      );
      fanout.push(performance.now() - t);
      peak = Math.max(peak, await rssBytes(sidecar.pid));
    }
    const after = await rssBytes(sidecar.pid);
    for (const [p, r] of ready.entries()) if (!r) await setPodReady(ns, pods[p]!, true);
    fanout.sort((a, b) => a - b);
    return {
      readyRssBytes,
      bytesPerStream: Math.round((withStreams - readyRssBytes) / total),
      changeFanoutMs: {
        p50: Math.round(fanout[Math.floor(fanout.length / 2)]!),
        max: Math.round(fanout.at(-1)!),
      },
      bytesPerChange: Math.round((after - withStreams) / sizes.changes),
      peakRssBytes: peak,
    };
  } finally {
    for (const r of readers) r.close();
    closeAll(idle);
    await sidecar.stop();
    await mount.remove();
  }
}

async function blockingPhase(ns: string, pods: string[], n: number) {
  const { mount, sidecar, port } = await sidecarFor(ns, [
    "--service-name=web",
    `--max-watchers=${n}`,
  ]);
  const conns: Deno.TcpConn[] = [];
  try {
    const path = `/v1/services/${ns}/web`;
    // Every pod ready (the streams phase leaves them so): the change below is a real one.
    await waitFor(async () => {
      const r = await sidecar.request(path);
      return r.status === 200 && r.json().endpoints.length === pods.length;
    });
    const index = (await sidecar.request(path)).json().index;
    const before = await rssBytes(sidecar.pid);
    const request = new TextEncoder().encode(
      `GET ${path}?index=${index}&wait=5m HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    await pool(Array.from({ length: n }), 20, async () => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      await c.write(request);
      conns.push(c);
    });
    const waiting = new RegExp(`kpd_open_watchers\\{kind="blocking"\\} ${n}\\b`);
    await waitFor(async () => waiting.test((await sidecar.request("/metrics")).text), {
      timeoutMs: 60_000,
    });
    const held = await rssBytes(sidecar.pid);
    const t = performance.now();
    await setPodReady(ns, pods[0]!, false);
    await pool(conns, 500, (c) => readResponse(c));
    const blockingAnswerMs = Math.round(performance.now() - t);
    await setPodReady(ns, pods[0]!, true);
    return { bytesPerWaitingQuery: Math.round((held - before) / n), blockingAnswerMs };
  } finally {
    closeAll(conns);
    await sidecar.stop();
    await mount.remove();
  }
}

if (import.meta.main) {
  console.log(JSON.stringify(await runFanout(), null, 2));
}
