/**
 * The benchmark's runner, against the real control plane (tests/control_plane/):
 *
 *   tools/deno task bench [SCENARIO...] [--quick] [--variants=shipped,source] [--lifetimes=N]
 *
 * Runs the named scenarios (default all, in this order): startup, memory, api_load,
 * propagation, serving, scale, fleet, fanout when bench/fanout.ts exists, remote_flood
 * (root: it makes a network namespace) and lifetimes (the soak of clients that come and go;
 * `--lifetimes=N` rounds, default 50,000). Each sidecar figure is taken in every variant:
 * `shipped` (exactly image/deno-flags.txt) and `source` (`deno task start`'s flags). The
 * results are merged into bench/results/latest.json (a run of some scenarios replaces only their
 * parts) and rendered into docs/performance.md and the README's performance table. `--quick` shrinks every size to check that scenarios work, and
 * writes to a temp dir instead: its figures are not results. `--fleet-levels=1,100,1000` sets
 * the fleet's numbers of clients.
 *
 * @module
 */
import { testCluster } from "../tests/support/cluster/http.ts";
import { type Context, createContext } from "./_context.ts";
import { manyServices, podService } from "./_fixtures.ts";
import type { Variant } from "./_processes.ts";
import { apiLoad } from "./api_load.ts";
import { fleet } from "./fleet.ts";
import { lifetimes } from "./lifetimes.ts";
import { memory } from "./memory.ts";
import { propagation } from "./propagation.ts";
import { remoteFlood } from "./remote_flood.ts";
import { renderMarkdown, renderReadmeTable } from "./report.ts";
import { scale } from "./scale.ts";
import { serving } from "./serving.ts";
import { startup } from "./startup.ts";
import type { Results } from "./types.ts";
import { machineInfo, now, round } from "./util.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const FANOUT = `${ROOT}bench/fanout.ts`;

/** A scenario: what it runs, and the keys of Results it owns. */
interface Scenario {
  run(ctx: Context, selected: string[]): Promise<void>;
  keys: (keyof Results)[];
}

const SCENARIOS: Record<string, Scenario> = {
  startup: { run: startup, keys: ["startup"] },
  memory: { run: memory, keys: ["memory"] },
  // Before the big fixtures are written: an API server holding 5,000 Pods and 1,000 Services
  // swung by 10-40 MB between readings, more than one watcher or a hundred cost.
  fleet: { run: fleet, keys: ["fleet"] },
  // Its window is quiet for the watched Service: the fixtures of later scenarios are made then.
  api_load: { run: (ctx, sel) => apiLoad(ctx, () => prepare(ctx, sel)), keys: ["apiLoad"] },
  propagation: { run: propagation, keys: ["propagation", "churn"] },
  serving: { run: serving, keys: ["serving"] },
  scale: { run: scale, keys: ["scale"] },
  fanout: { run: fanout, keys: ["fanout"] },
  remote_flood: { run: remoteFlood, keys: ["remoteFlood"] },
  lifetimes: { run: lifetimes, keys: ["lifetimes"] },
};

/** Makes the fixtures the selected scenarios need. */
async function prepare(ctx: Context, selected: string[]): Promise<void> {
  if (selected.includes("serving")) {
    await podService(ctx, `web${ctx.sizes.servingPods}`, ctx.sizes.servingPods);
  }
  if (selected.includes("scale")) {
    await podService(ctx, `web${ctx.sizes.bigPods}`, ctx.sizes.bigPods);
    await manyServices(ctx, ctx.sizes.manyServices);
  }
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** bench/fanout.ts (written apart) as a subprocess printing its results as JSON on stdout. */
async function fanout(ctx: Context): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", FANOUT, ...(ctx.quick ? ["--quick"] : [])],
    cwd: ROOT,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) throw new Error(`bench/fanout.ts exited with ${out.code}: ${text.slice(-500)}`);
  // Its results: the whole of stdout as one JSON object, or else its last line that is one.
  const candidates = [text, ...text.split("\n").reverse()];
  for (const c of candidates) {
    try {
      const v = JSON.parse(c);
      if (v && typeof v === "object" && !Array.isArray(v)) {
        ctx.results.fanout = v;
        return;
      }
    } catch {
      // not this one
    }
  }
  throw new Error(`bench/fanout.ts printed no JSON object on stdout: ${text.slice(-500)}`);
}

/** The commit measured, with "+dirty" when main.ts or lib/ have uncommitted changes. */
function gitDescribe(): string {
  const git = (...args: string[]) => {
    const o = new Deno.Command("git", { args, cwd: ROOT, stdout: "piped", stderr: "null" })
      .outputSync();
    return new TextDecoder().decode(o.stdout).trim();
  };
  const head = git("rev-parse", "--short", "HEAD") || "unknown";
  return git("status", "--porcelain", "--", "main.ts", "lib") ? `${head}+dirty` : head;
}

/** The results of earlier runs, if in the current shape. */
function previous(path: string): Partial<Results> {
  try {
    const r = JSON.parse(Deno.readTextFileSync(path)) as Partial<Results>;
    return r.scenarios ? r : {};
  } catch {
    return {};
  }
}

/** Puts the table between the README's bench-table markers. */
function updateReadme(table: string): void {
  const path = `${ROOT}README.md`;
  const text = Deno.readTextFileSync(path);
  const start = "<!-- bench-table:start -->", end = "<!-- bench-table:end -->";
  const a = text.indexOf(start), b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README.md: no ${start} … ${end} markers`);
  Deno.writeTextFileSync(path, text.slice(0, a + start.length) + "\n" + table + text.slice(b));
}

async function main(): Promise<void> {
  const args = Deno.args.filter((a) => !a.startsWith("--"));
  const quick = Deno.args.includes("--quick");
  const variantsArg = Deno.args.find((a) => a.startsWith("--variants="))?.slice(11);
  const variants = (variantsArg?.split(",") ?? ["shipped", "source"]) as Variant[];
  const known = Object.keys(SCENARIOS).filter((s) => s !== "fanout" || exists(FANOUT));
  for (const a of args) {
    if (!known.includes(a)) {
      throw new TypeError(`Unknown scenario "${a}": one of ${known.join(", ")}`);
    }
  }
  for (const v of variants) {
    if (v !== "shipped" && v !== "source") {
      throw new TypeError(`--variants=${variantsArg}: each one of shipped, source`);
    }
  }
  const selected = args.length ? known.filter((s) => args.includes(s)) : known;
  const outDir = quick
    ? await Deno.makeTempDir({ prefix: "kpd-bench-quick-" })
    : `${ROOT}bench/results`;
  const jsonPath = `${outDir}/latest.json`;
  const commit = gitDescribe();
  const date = new Date().toISOString();
  const results: Results = {
    ...(quick ? {} : previous(jsonPath)),
    date,
    durationS: 0,
    command: "tools/deno task bench" + (Deno.args.length ? " " + Deno.args.join(" ") : ""),
    kubernetes: testCluster().version,
    machine: machineInfo(),
    commit,
    scenarios: quick ? {} : previous(jsonPath).scenarios ?? {},
    notes: NOTES,
  };
  const ctx = createContext({ quick, variants, results });
  const levels = Deno.args.find((a) => a.startsWith("--fleet-levels="))?.slice(15);
  if (levels) ctx.sizes = { ...ctx.sizes, fleetLevels: levels.split(",").map(Number) };
  const lifetimesArg = Deno.args.find((a) => a.startsWith("--lifetimes="))?.slice(12);
  if (lifetimesArg !== undefined) {
    if (!/^[1-9]\d*$/.test(lifetimesArg)) {
      throw new TypeError(`--lifetimes=${lifetimesArg}: a whole number of rounds, e.g. 50000`);
    }
    ctx.sizes = { ...ctx.sizes, lifetimes: Number(lifetimesArg) };
  }
  const t0 = now();
  try {
    for (const name of selected) {
      const s0 = now();
      for (const k of SCENARIOS[name]!.keys) delete results[k];
      ctx.log(`scenario ${name}`);
      await SCENARIOS[name]!.run(ctx, selected);
      const durationS = round((now() - s0) / 1000, 0);
      results.scenarios[name] = { date, commit, durationS };
      ctx.log(`scenario ${name} done in ${durationS} s`);
    }
  } finally {
    for (const c of ctx.cleanups.reverse()) await c().catch(() => {});
  }
  results.durationS = round((now() - t0) / 1000, 0);
  results.loadavgEnd = Deno.readTextFileSync("/proc/loadavg").trim();
  if (gitDescribe() !== commit) {
    results.notes = [...results.notes, `main.ts or lib/ changed during the run (${commit}).`];
  }
  await Deno.mkdir(outDir, { recursive: true });
  await Deno.writeTextFile(jsonPath, JSON.stringify(results, null, 2) + "\n");
  const doc = quick ? `${outDir}/performance.md` : `${ROOT}docs/performance.md`;
  await Deno.writeTextFile(doc, renderMarkdown(results));
  if (quick) await Deno.writeTextFile(`${outDir}/readme_table.md`, renderReadmeTable(results));
  else updateReadme(renderReadmeTable(results));
  ctx.log(`wrote ${jsonPath} and ${doc} in ${results.durationS} s`);
}

const NOTES = [
  "`shipped`: the sidecar as the image runs it, `deno run` of main.ts with exactly the flags of " +
  "image/deno-flags.txt (the 48 MB V8 heap cap, no code cache, the narrow permissions), the read " +
  "permission pointed at the bench's service-account mount instead of /var/run/secrets (the bench " +
  "cannot write there). `deno compile` cannot run here (it downloads denort), so main.ts runs " +
  "with the baked flags (tests/image_test.ts runs the bundle tools/compile.sh embeds with the " +
  "same flags). `source`: `deno task start`'s --allow-net " +
  "--allow-read --allow-env, no heap cap. Each bare server runs with the same flags as the " +
  "sidecar it is the anchor of.",
  "Deno's timers fire about every 2 ms here at best (setTimeout(1)), so the /endpoints poller " +
  "sends its requests back to back; its measured period is the resolution.",
];

await main();
