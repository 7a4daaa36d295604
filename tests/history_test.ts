/**
 * The history checker against the real control plane: seeded changes to a few Services per
 * tenant (a namespace each), interleaved with faults (proxy cut, black hole with default
 * settings, an API server outage of 30 s or more, compaction plus restart), while three sidecars
 * (by name, every Service, a label selector), each watching every tenant's namespace through a
 * fault proxy, are asked by clients that poll, hold blocking queries, read SSE streams, and come
 * and go (an all-Services stream resumed over and over, short blocking queries, keep-alive
 * connections dropped). Then every answer is checked against its namespace's truth (see
 * tests/support/history/checker.ts), every resume for skipped changes, the last-updated headers
 * for honesty through black holes, and each sidecar's heap against its start.
 * `KPD_HISTORY_SEED=a,b,c` replays seeds; `KPD_HISTORY_SOAK=1` runs more changes and faults and
 * prints figures for docs/performance.md.
 */
import { checkHistory, formatViolations } from "./support/history/checker.ts";
import { saveHistory } from "./support/history/dump.ts";
import { runHistory } from "./support/history/run.ts";
import { seedsFromEnv } from "./support/history/schedule.ts";
import { LIVE_TEST as T } from "./support/options.ts";

/** CI: three tenants, 150 changes each (one every 0.3-1.3 s), every fault once (about 3 min). */
const CI = { tenants: 3, changes: 150, rounds: 1 };
/** Soak: three rounds of faults, changes throughout (~10 min). */
const SOAK = { tenants: 3, changes: 600, rounds: 3 };

Deno.test(
  "every answer the sidecar gives through faults is a true state, in order, and views recover in time",
  T,
  async () => {
    const plan = Deno.env.get("KPD_HISTORY_SOAK") === "1" ? SOAK : CI;
    const seeds = seedsFromEnv(plan.tenants);
    const log = (line: string) => console.error(`[history] ${line}`);
    log(`seeds ${seeds.join(",")} (replay: KPD_HISTORY_SEED=${seeds.join(",")})`);
    const started = performance.now();
    const h = await runHistory({ seeds, changes: plan.changes, rounds: plan.rounds, log });
    const { violations, figures } = checkHistory(h);
    const applied = h.tenants.reduce((n, t) => n + t.applied, 0);
    const failed = h.tenants.reduce((n, t) => n + t.failed, 0);
    log(
      `figures: ${figures.answers} answers checked, ${figures.etags} ETags, ` +
        `${figures.sseEvents} SSE events, ${figures.faults} faults, ${applied} changes ` +
        `(${failed} refused), ${figures.truthStates} true states, truth relists ` +
        `${h.truth.relists} (coarsened ${h.truth.coarsened}); run ` +
        `${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
    log(
      `resumes checked: ${figures.resumes}; last-updated checked on ` +
        `${figures.staleness.checked} answers; ` +
        figures.staleness.freshAgain.map((f) =>
          `fresh again after ${f.label} in ${(f.ms / 1000).toFixed(1)} s (longest watch)`
        ).join(", "),
    );
    for (const r of h.heap ?? []) {
      log(
        `heap of the ${r.sidecar} sidecar: ${(r.before / 1e6).toFixed(1)} -> ` +
          `${(r.after / 1e6).toFixed(1)} MB`,
      );
    }
    for (const r of figures.recoveries) {
      log(
        `recovery after ${r.label}: ${
          r.ms === undefined || r.ms === Infinity
            ? "not within the run"
            : `${(r.ms / 1000).toFixed(1)} s`
        }`,
      );
    }
    if (h.truth.coarsened > 0) {
      log(
        `warning: ${h.truth.coarsened} of the truth's relists after a 410 found changes it had ` +
          "not seen: states in those gaps are unknown to the checker",
      );
    }
    if (violations.length) {
      const saved = await saveHistory(h, seeds);
      log(
        `the whole history: ${saved} (check it again: deno run --allow-read ` +
          `tests/support/history/dump.ts ${saved})`,
      );
      throw new Error(formatViolations(violations, seeds, h));
    }
  },
);
