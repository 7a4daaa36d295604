/**
 * Scenario `serving`: wrk on GET /endpoints of a 1,000-endpoint Service, plain, gzip and 304,
 * the sidecar beside bench/bare_server.ts returning the same bytes and headers, per variant,
 * targets alternating within each round; the server's CPU time per request from /proc.
 *
 * @module
 */
import type { Context } from "./_context.ts";
import { countAddresses, podService } from "./_fixtures.ts";
import { type Child, snapshot, startBare, startSidecar, type Variant } from "./_processes.ts";
import type { ProbeResult, ServingRun } from "./types.ts";
import { rawGet } from "./_http.ts";
import { hasProgram, procCpuMs, round, runWrk } from "./util.ts";

/** One wrk thread and 4 connections: wrk and the server share 2 cores. */
const WRK_BASE = ["-t1", "-c4", "--latency"];

async function probe(port: number, headers: Record<string, string>): Promise<ProbeResult> {
  const r = await rawGet(port, "/endpoints", headers);
  return {
    status: r.status,
    contentEncoding: r.headers["content-encoding"] ?? null,
    contentLength: r.headers["content-length"] ?? null,
    transferEncoding: r.headers["transfer-encoding"] ?? null,
    vary: r.headers["vary"] ?? null,
    etag: r.headers["etag"] ?? null,
    wireBytes: r.wireBytes,
  };
}

/** wrk's version line, or throws how to install it. */
export function wrkVersion(): string {
  if (!hasProgram("wrk")) {
    throw new Error("wrk is not installed: `apt-get update && apt-get install -y wrk`");
  }
  const v = new Deno.Command("wrk", { args: ["-v"], stdout: "piped", stderr: "piped" })
    .outputSync();
  return new TextDecoder().decode(v.stdout).split("\n")[0]!.split(" Copyright")[0]!;
}

/** Fills `results.serving`. */
export async function serving(ctx: Context): Promise<void> {
  ctx.results.machine.wrk = wrkVersion();
  const pods = ctx.sizes.servingPods;
  const web = await podService(ctx, `web${pods}`, pods);
  type Target = { name: ServingRun["target"]; variant: Variant; p: Child };
  const targets: Target[] = [];
  let snap: Awaited<ReturnType<typeof snapshot>> | undefined;
  for (const variant of ctx.variants) {
    ctx.log(`serving: sidecar on ${web.service} and the bare server with its bytes, ${variant}`);
    const sc = await startSidecar(ctx, variant, { env: web.env });
    snap ??= await snapshot(sc.url);
    targets.push({ name: "sidecar", variant, p: sc });
    targets.push({ name: "bare", variant, p: await startBare(ctx, variant, snap) });
  }
  const endpoints = countAddresses(snap!.body);
  if (endpoints !== pods) throw new Error(`${web.service} serves ${endpoints} addresses`);
  const etag = snap!.headers.ETag!;
  const probes: Record<string, ProbeResult> = {};
  for (const t of targets.filter((t) => t.variant === ctx.variants[0])) {
    probes[`${t.name} plain`] = await probe(t.p.port, {});
    probes[`${t.name} gzip`] = await probe(t.p.port, { "Accept-Encoding": "gzip" });
    probes[`${t.name} 304`] = await probe(t.p.port, { "If-None-Match": etag });
  }
  for (const t of targets) await runWrk([...WRK_BASE, "-d2s", `${t.p.url}/endpoints`]); // warm-up
  const kinds: { kind: ServingRun["kind"]; headers: string[] }[] = [
    { kind: "plain", headers: [] },
    { kind: "gzip", headers: ["-H", "Accept-Encoding: gzip"] },
    { kind: "304", headers: ["-H", `If-None-Match: ${etag}`] },
  ];
  const runs: ServingRun[] = [];
  for (const k of kinds) {
    for (let round_ = 1; round_ <= ctx.sizes.wrkRounds; round_++) {
      for (const t of targets) {
        const cpu0 = procCpuMs(t.p.pid);
        const wrk = await runWrk([
          ...WRK_BASE,
          `-d${ctx.sizes.wrkS}s`,
          ...k.headers,
          `${t.p.url}/endpoints`,
        ]);
        const cpuUsPerRequest = round((procCpuMs(t.p.pid) - cpu0) * 1000 / wrk.requests, 1);
        runs.push({
          kind: k.kind,
          target: t.name,
          variant: t.variant,
          round: round_,
          wrk,
          cpuUsPerRequest,
        });
        ctx.log(
          `serving ${k.kind} ${t.name} (${t.variant}) #${round_}: ${wrk.requestsPerSec} req/s, ` +
            `p99 ${wrk.p99Ms} ms, ${cpuUsPerRequest} CPU µs/req` +
            (wrk.errors ? `, ${wrk.errors} errors` : ""),
        );
      }
    }
  }
  ctx.results.serving = {
    service: web.service,
    endpoints,
    bodyBytes: new TextEncoder().encode(snap!.body).length,
    durationS: ctx.sizes.wrkS,
    rounds: ctx.sizes.wrkRounds,
    connections: 4,
    threads: 1,
    probes,
    runs,
  };
  for (const t of targets) await t.p.stop();
}
