/**
 * Scenario `memory`: VmRSS, VmHWM, RssAnon and RssFile at idle of the in-cluster sidecar, beside
 * bench/bare_server.ts and variants of it that add one part of the sidecar each (ICU collation,
 * a list/watch over TLS), all in the same configuration, after each served the same requests;
 * and the sidecar in kubeconfig mode (from source only: the shipped flags cannot read one).
 *
 * @module
 */
import { writeKubeconfig } from "../tests/support/cluster/kubeconfig.ts";
import type { Context } from "./_context.ts";
import { countAddresses, podService } from "./_fixtures.ts";
import { load, snapshot, startBare, startSidecar, type Variant } from "./_processes.ts";
import { binaryResident } from "./_resident.ts";
import type { MemoryProcess } from "./types.ts";
import { parseMetric, procMemory, round, sleep } from "./util.ts";

const BARES: [key: string, label: string, args: string[]][] = [
  ["bare", "bare Deno.serve (bench/bare_server.ts)", []],
  ["bare+icu", "bare + one localeCompare (ICU collation)", ["--icu"]],
  ["bare+watch", "bare + list/watch over TLS (createHttpClient, fetch)", ["--watch=web100"]],
  ["bare+icu+watch", "bare + both", ["--icu", "--watch=web100"]],
];

interface Target {
  key: string;
  label: string;
  variant: Variant;
  pid: number;
  url: string;
}

/** The JavaScript heap of a target, read after its idle reading: the sidecar's /metrics, the
 * bare server's /memory. */
async function jsHeap(t: Target): Promise<{ usedMB: number; totalMB: number } | undefined> {
  const mb = (bytes: number) => round(bytes / 1e6, 1);
  if (t.key === "sidecar" || t.key === "kubeconfig") {
    const heap = parseMetric(await (await fetch(`${t.url}/metrics`)).text(), "kpd_js_heap_bytes");
    const kind = (k: string) => [...heap.values()].find((c) => c.labels.kind === k)?.value;
    const [used, total] = [kind("used"), kind("total")];
    return used !== undefined && total !== undefined
      ? { usedMB: mb(used), totalMB: mb(total) }
      : undefined;
  }
  const u = await (await fetch(`${t.url}/memory`)).json() as Deno.MemoryUsage;
  return { usedMB: mb(u.heapUsed), totalMB: mb(u.heapTotal) };
}

/** Fills `results.memory`. */
export async function memory(ctx: Context): Promise<void> {
  const web = await podService(ctx, "web100", 100);
  const targets: Target[] = [];
  const stops: (() => Promise<void>)[] = [];
  let snap: Awaited<ReturnType<typeof snapshot>> | undefined;
  for (const variant of ctx.variants) {
    ctx.log(`memory: sidecar and bare servers, ${variant}`);
    const sc = await startSidecar(ctx, variant, { env: web.env });
    stops.push(sc.stop);
    snap ??= await snapshot(sc.url);
    targets.push({
      key: "sidecar",
      label: "sidecar, in-cluster",
      variant,
      pid: sc.pid,
      url: sc.url,
    });
    for (const [key, label, args] of BARES) {
      const b = await startBare(ctx, variant, { ...snap, args, env: web.mount.env });
      stops.push(b.stop);
      targets.push({ key, label, variant, pid: b.pid, url: b.url });
    }
  }
  if (ctx.variants.includes("source")) {
    const kubeconfig = `${web.mount.dir}/kubeconfig`;
    await writeKubeconfig(kubeconfig, { token: web.mount.token, namespace: web.ns });
    const kc = await startSidecar(ctx, "source", {
      env: { KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "web100" },
      args: [`--kubeconfig=${kubeconfig}`],
    });
    stops.push(kc.stop);
    targets.push({
      key: "kubeconfig",
      label: "sidecar, kubeconfig mode",
      variant: "source",
      pid: kc.pid,
      url: kc.url,
    });
  }
  await sleep(1000);
  const atReady = targets.map((t) => procMemory(t.pid));
  for (const t of targets) await load(t.url, ctx.sizes.loadRequests);
  await sleep(ctx.sizes.idleWaitMs);
  const processes: MemoryProcess[] = [];
  for (const [i, t] of targets.entries()) {
    const idle = procMemory(t.pid);
    processes.push({
      key: t.key,
      label: t.label,
      variant: t.variant,
      sample: {
        atReady: atReady[i]!,
        idle,
        binary: binaryResident(t.pid),
        jsHeap: await jsHeap(t),
      },
    });
  }
  ctx.results.memory = {
    endpoints: countAddresses(snap!.body),
    requests: ctx.sizes.loadRequests,
    concurrency: 4,
    idleWaitMs: ctx.sizes.idleWaitMs,
    bodyBytes: new TextEncoder().encode(snap!.body).length,
    processes,
  };
  ctx.log(
    "memory idle VmRSS: " +
      processes.map((p) => `${p.key} (${p.variant}) ${p.sample.idle.rssMB} MB`).join(", "),
  );
  for (const stop of stops) await stop();
}
