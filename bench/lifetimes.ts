/**
 * Scenario `lifetimes`: clients that come and go, the soak of issue 17. One sidecar with the
 * image's flags (its 48 MB heap cap) plus V8's `--gc-global` (so a heap reading is what is still
 * reachable), in-cluster, serving one Service of 2 Pods; then, one after another, N rounds
 * (`--lifetimes=N`, default 50,000) of one client lifetime of each kind from
 * tests/support/lifetimes.ts: an SSE stream read to its snapshot and dropped, a blocking query
 * given up, and keep-alive connections (two requests then a clean close, one cut mid-headers,
 * one closed before its answer). The JS heap (through /metrics) and VmRSS are read before, after
 * every 10,000 rounds and at the end: the growth per 10,000 lifetimes, and the series.
 *
 * @module
 */
import { churn, type Reading, soakFlags } from "../tests/support/lifetimes.ts";
import { spawnSidecar } from "../tests/support/sidecar.ts";
import type { Context } from "./_context.ts";
import { podService } from "./_fixtures.ts";
import type { LifetimesReading } from "./types.ts";
import { now, round } from "./util.ts";

/** Rounds between readings (the "per 10,000 lifetimes" of the report); quick: 5 readings. */
const READ_EVERY = 10_000;

const MB = (bytes: number) => round(bytes / 1e6, 1);

/** Growth per READ_EVERY rounds between two readings. */
function per(a: Reading, b: Reading, key: "heapBytes" | "rssBytes"): number {
  return b.lifetimes > a.lifetimes
    ? round((b[key] - a[key]) / 1e6 / ((b.lifetimes - a.lifetimes) / READ_EVERY), 2)
    : NaN;
}

/** Fills `results.lifetimes`. */
export async function lifetimes(ctx: Context): Promise<void> {
  const web = await podService(ctx, "web2", 2);
  const n = ctx.sizes.lifetimes;
  const readEvery = ctx.quick ? Math.max(1, Math.ceil(n / 5)) : READ_EVERY;
  const flags = await soakFlags(web.mount.dir);
  ctx.log(`lifetimes: ${n} rounds, sidecar with ${flags.find((f) => f.startsWith("--v8"))}`);
  const sidecar = await spawnSidecar({
    env: web.env,
    args: [`--service-name=${web.service}`],
    denoFlags: flags,
  });
  ctx.cleanups.push(() => sidecar.stop());
  const client = Deno.createHttpClient({});
  ctx.cleanups.push(() => Promise.resolve(client.close()));
  const path = `/v1/services/${web.ns}/${web.service}`;
  while ((await sidecar.request(path)).status !== 200) await new Promise((r) => setTimeout(r, 200));
  const index = (await sidecar.request(path)).headers.get("x-discovery-index")!;
  const target = {
    url: sidecar.url,
    pid: sidecar.pid,
    service: `${web.ns}/${web.service}`,
    index,
    client,
  };
  const t0 = now();
  const readings = await churn(target, {
    lifetimes: n,
    readEvery,
    onReading: (r) =>
      ctx.log(`lifetimes: ${r.lifetimes}: heap ${MB(r.heapBytes)} MB, VmRSS ${MB(r.rssBytes)} MB`),
  });
  const seconds = (now() - t0) / 1000;
  const metrics = (await sidecar.request("/metrics")).text;
  const open = [...metrics.matchAll(/^kpd_open_watchers\{kind="(\w+)"\} (\d+)$/gm)]
    .map((m) => `${m[1]} ${m[2]}`).join(", ");
  await sidecar.stop();
  const [start, first, end] = [readings[0]!, readings[1]!, readings.at(-1)!];
  const series: LifetimesReading[] = readings.map((r) => ({
    lifetimes: r.lifetimes,
    heapMB: MB(r.heapBytes),
    rssMB: MB(r.rssBytes),
  }));
  ctx.results.lifetimes = {
    lifetimes: n,
    readEvery,
    v8Flags: flags.find((f) => f.startsWith("--v8-flags="))!.slice("--v8-flags=".length),
    durationS: round(seconds, 0),
    roundsPerS: round(n / seconds, 0),
    heapMBPer10k: per(start, end, "heapBytes"),
    rssMBPer10k: per(start, end, "rssBytes"),
    heapMBPer10kAfterFirst: per(first, end, "heapBytes"),
    rssMBPer10kAfterFirst: per(first, end, "rssBytes"),
    openAfter: open,
    readings: series,
  };
  ctx.log(
    `lifetimes: ${n} rounds in ${round(seconds, 0)} s; per 10,000: heap ` +
      `${ctx.results.lifetimes.heapMBPer10k} MB, VmRSS ${ctx.results.lifetimes.rssMBPer10k} MB`,
  );
}
