/**
 * Scenario `startup`: process spawn to the first answer on /readyz and to /readyz 200 (the first
 * complete list), in-cluster, watching a Service of 100 endpoints, several runs per variant.
 *
 * @module
 */
import type { Context } from "./_context.ts";
import { podService } from "./_fixtures.ts";
import { startSidecar } from "./_processes.ts";
import type { StartupRun } from "./types.ts";
import { percentile, round } from "./util.ts";

/** Fills `results.startup`, one entry per variant. */
export async function startup(ctx: Context): Promise<void> {
  const web = await podService(ctx, "web100", 100);
  ctx.results.startup = [];
  for (const variant of ctx.variants) {
    ctx.log(`start-up: ${ctx.sizes.startupRuns} runs, ${variant}`);
    const runs: StartupRun[] = [];
    for (let i = 0; i < ctx.sizes.startupRuns; i++) {
      const sc = await startSidecar(ctx, variant, { env: web.env, readyTimeoutMs: 30_000 });
      if (sc.readyMs === undefined) {
        throw new Error(`start-up run ${i} (${variant}): not ready in 30 s: ${sc.stderr()}`);
      }
      runs.push({ listenMs: round(sc.listenMs, 1), readyMs: round(sc.readyMs, 1) });
      await sc.stop();
    }
    const s = {
      variant,
      service: "web100 (100 endpoints, 1 slice)",
      runs,
      listenMedianMs: round(percentile(runs.map((r) => r.listenMs), 50), 1),
      readyMedianMs: round(percentile(runs.map((r) => r.readyMs), 50), 1),
    };
    ctx.results.startup.push(s);
    ctx.log(`start-up ${variant}: median ${s.readyMedianMs} ms to /readyz 200`);
  }
}
