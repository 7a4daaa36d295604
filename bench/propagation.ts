/**
 * Scenario `propagation`: Pod write → served, over many readiness changes of one Pod of web100
 * (100 endpoints), in two series (paced, and back to back), per variant; each change is seen by
 * a poller of /endpoints, a blocking query and the bench's own watch (bench/_observers.ts). The
 * sidecar's memory is read before and after each series: its peak under churn (goal 3).
 *
 * @module
 */
import { setPodReady } from "../tests/support/cluster/fixtures.ts";
import type { Context } from "./_context.ts";
import { type PodService, podService } from "./_fixtures.ts";
import { Blocker, podReadyIn, Poller, SliceWatch, type View } from "./_observers.ts";
import { load, type Sidecar, startSidecar } from "./_processes.ts";
import type { Churn, Propagation } from "./types.ts";
import { now, procCpuMs, procMemory, round, sleep, summarize } from "./util.ts";

/** Fills `results.propagation` and `results.churn`. */
export async function propagation(ctx: Context): Promise<void> {
  const web = await podService(ctx, "web100", 100);
  ctx.results.propagation = [];
  ctx.results.churn = [];
  for (const variant of ctx.variants) {
    const sc = await startSidecar(ctx, variant, { env: web.env });
    await load(sc.url, ctx.sizes.loadRequests);
    await sleep(ctx.sizes.idleWaitMs);
    const churn: Churn = { variant, samples: [] };
    const sample = (when: string) => {
      const memory = procMemory(sc.pid);
      ctx.log(`sidecar (${variant}) ${when}: VmRSS ${memory.rssMB} MB, VmHWM ${memory.hwmMB} MB`);
      churn.samples.push({ when, memory, cpuMs: procCpuMs(sc.pid) });
    };
    sample("idle, before the changes");
    const gap = ctx.sizes.changeGapMs;
    ctx.results.propagation.push(await series(ctx, web, sc, `paced: ${gap} ms apart`, gap));
    sample("after the paced changes");
    ctx.results.propagation.push(await series(ctx, web, sc, "back to back", 0));
    sample("after the back-to-back changes");
    ctx.results.churn.push(churn);
    await sc.stop();
  }
}

/** Toggles one Pod's readiness `changes` times, each `gapMs` after the previous was served. */
async function series(
  ctx: Context,
  web: PodService,
  sc: Sidecar,
  label: string,
  gapMs: number,
): Promise<Propagation> {
  const changes = ctx.sizes.changes;
  ctx.log(`propagation (${sc.variant}): ${changes} readiness changes on web100, ${label}`);
  const watch = new SliceWatch();
  await watch.open(web.ns, "web100");
  const poller = await Poller.start(sc.port, 0);
  const blocker = await Blocker.start(sc.port, `/v1/services/${web.ns}/web100`);
  // Let the watch deliver its initial ADDED events and the poller see the current view.
  await sleep(500);
  const w2s: number[] = [], a2s: number[] = [], w2e: number[] = [], e2s: number[] = [];
  const w2a: number[] = [], w2b: number[] = [], e2b: number[] = [];
  let failures = 0;
  const modifiedBefore = watch.modified;
  const cpu0 = procCpuMs(sc.pid);
  const t0 = now();
  for (let i = 0; i < changes; i++) {
    const pod = `web100-${Math.floor(i / 2) % 100}`;
    const ready = i % 2 === 1;
    if (gapMs > 0) await sleep(gapMs);
    const served = poller.next((v) => podReadyIn(v.text, pod) === ready, 15_000);
    const tWrite = now();
    await setPodReady(web.ns, pod, ready);
    const tAck = now();
    let view: View;
    try {
      view = await served;
    } catch {
      failures++;
      continue;
    }
    const tEvent = await watch.arrival(view.index);
    const tBlock = await blocker.arrival(view.index);
    if (tEvent === undefined || tBlock === undefined) {
      failures++;
      continue;
    }
    w2s.push(view.t - tWrite);
    w2a.push(tAck - tWrite);
    a2s.push(view.t - tAck);
    w2e.push(tEvent - tWrite);
    e2s.push(view.t - tEvent);
    w2b.push(tBlock - tWrite);
    e2b.push(tBlock - tEvent);
  }
  const cpuMs = procCpuMs(sc.pid) - cpu0;
  const sidecarCpuPercent = round(cpuMs / (now() - t0) * 100, 0);
  await poller.stop();
  await blocker.stop();
  await sleep(200);
  const modified = watch.modified - modifiedBefore;
  await watch.close();
  const p: Propagation = {
    variant: sc.variant,
    label,
    service: "web100",
    endpoints: 100,
    changes,
    failures,
    pollGapMs: 0,
    pollPeriodMs: round(poller.periodMs, 3),
    sidecarCpuPercent,
    cpuMsPerChange: round(cpuMs / changes, 2),
    changeGapMs: gapMs,
    writeToServed: summarize(w2s),
    writeToAck: summarize(w2a),
    ackToServed: summarize(a2s),
    writeToEvent: summarize(w2e),
    eventToServed: summarize(e2s),
    writeToBlocking: summarize(w2b),
    eventToBlocking: summarize(e2b),
    eventsPerChange: round(modified / changes, 2),
  };
  ctx.log(
    `propagation (${sc.variant}, ${label}): write→served p50 ${p.writeToServed.p50} ms, p99 ` +
      `${p.writeToServed.p99} ms; event→served p50 ${p.eventToServed.p50} ms, p99 ` +
      `${p.eventToServed.p99} ms; poll period ${p.pollPeriodMs} ms; failures ${failures}`,
  );
  return p;
}
