/**
 * Renders bench/results/latest.json as docs/performance.md (the results table, then each
 * scenario's section from bench/report_sections.ts) and as the README's performance table.
 * bench/run.ts calls both at the end of a run; to re-render without measuring again:
 *
 *   tools/deno run --allow-read --allow-write bench/report.ts
 *
 * @module
 */
import { f, inv, met, p50p99, ratio } from "./_format.ts";
import { lifetimesCell } from "./report_lifetimes.ts";
import { sections } from "./report_sections.ts";
import type { Results, ServingRun, Variant } from "./types.ts";
import { percentile } from "./util.ts";

/** Median over the rounds of one kind, target and variant (robust to one disturbed round). */
export function servingMedian(runs: ServingRun[], kind: string, target: string, variant: Variant) {
  const rs = runs.filter((r) => r.kind === kind && r.target === target && r.variant === variant);
  const med = (g: (r: ServingRun) => number) => rs.length ? percentile(rs.map(g), 50) : undefined;
  return {
    rps: med((r) => r.wrk.requestsPerSec),
    p50: med((r) => r.wrk.p50Ms),
    p99: med((r) => r.wrk.p99Ms),
    cpu: med((r) => r.cpuUsPerRequest),
    errors: rs.reduce((a, r) => a + r.wrk.errors, 0),
    command: rs[0]?.wrk.command.replace(/127\.0\.0\.1:\d+/, "127.0.0.1:PORT") ?? "",
  };
}

/** The idle memory of one process of the memory scenario. */
export function idle(r: Results, key: string, variant: Variant) {
  return r.memory?.processes.find((p) => p.key === key && p.variant === variant)?.sample.idle;
}

/** The churn figures of one variant: idle VmRSS before, VmHWM peak, CPU per change. */
export function churnOf(r: Results, variant: Variant) {
  const c = r.churn?.find((x) => x.variant === variant);
  if (!c || c.samples.length < 2) return undefined;
  const series = (r.propagation ?? []).filter((p) => p.variant === variant);
  const changes = series.reduce((a, p) => a + p.changes, 0);
  const cpu = c.samples.at(-1)!.cpuMs - c.samples[0]!.cpuMs;
  return {
    idleRss: c.samples[0]!.memory.rssMB,
    peakHwm: Math.max(...c.samples.slice(1).map((s) => s.memory.hwmMB)),
    changes,
    cpuMsPerChange: changes ? cpu / changes : undefined,
  };
}

/** One row of the results table: a figure per variant beside its anchor. */
interface Row {
  goal: string;
  measure: string;
  shipped: string;
  source: string;
  anchor: string;
  ratio: string;
  target: string;
  verdict: string;
}

function rows(r: Results): Row[] {
  const out: Row[] = [];
  const add = (x: Partial<Row> & { goal: string; measure: string }) =>
    out.push({ shipped: "–", source: "–", anchor: "", ratio: "", target: "", verdict: "", ...x });
  const [sS, sB] = [idle(r, "sidecar", "shipped"), idle(r, "bare", "shipped")];
  const [oS, oB] = [idle(r, "sidecar", "source"), idle(r, "bare", "source")];
  if (sS || oS) {
    add({
      goal: "2",
      measure: `idle VmRSS, in-cluster, ${r.memory!.endpoints} endpoints (RssAnon)`,
      shipped: sS ? `${f(sS.rssMB)} MB (${f(sS.anonMB)})` : "–",
      source: oS ? `${f(oS.rssMB)} MB (${f(oS.anonMB)})` : "–",
      anchor: sB ? `bare \`Deno.serve\` ${f(sB.rssMB)} MB (${f(sB.anonMB)})` : "–",
      ratio: ratio(sS?.rssMB, sB?.rssMB) +
        (oS && oB ? ` (source ${ratio(oS.rssMB, oB.rssMB)})` : ""),
      target: "≤ 1.2×",
      verdict: sS && sB ? met(sS.rssMB / sB.rssMB <= 1.2) : "",
    });
  }
  const [cS, cO] = [churnOf(r, "shipped"), churnOf(r, "source")];
  if (cS || cO) {
    add({
      goal: "3",
      measure: `VmHWM through ${
        cS?.changes ?? cO?.changes
      } changes, /endpoints polled (CPU per change)`,
      shipped: cS ? `${f(cS.peakHwm)} MB (${f(cS.cpuMsPerChange, 2)} ms)` : "–",
      source: cO ? `${f(cO.peakHwm)} MB (${f(cO.cpuMsPerChange, 2)} ms)` : "–",
      anchor: cS ? `idle VmRSS before, same process ${f(cS.idleRss)} MB` : "",
      ratio: cS ? ratio(cS.peakHwm, cS.idleRss) : "",
      target: "≤ 1.5×",
      verdict: cS ? met(cS.peakHwm / cS.idleRss <= 1.5) : "",
    });
  }
  const big = (v: Variant) =>
    r.scale?.cases.find((c) => c.variant === v && c.services === 1 && c.ready);
  if (r.scale) {
    const [b, o] = [big("shipped"), big("source")];
    add({
      goal: "4",
      measure: `CPU per slice update, 1 Service of ${
        f((b ?? o)?.endpoints, 0)
      } endpoints, no body read (one reader of the whole body)`,
      shipped: b
        ? `${f(b.cpuMsPerUpdate, 2)} ms (whole body read: ${f(b.cpuMsPerUpdateWholeBody, 2)} ms)`
        : "not ready",
      source: o
        ? `${f(o.cpuMsPerUpdate, 2)} ms (whole body read: ${f(o.cpuMsPerUpdateWholeBody, 2)} ms)`
        : "–",
      target: "≤ 2 ms",
      verdict: b ? met(b.cpuMsPerUpdate! <= 2) : "",
    });
  }
  const s = r.serving;
  for (const kind of s ? ["plain", "gzip", "304"] as const : []) {
    const a = servingMedian(s!.runs, kind, "sidecar", "shipped");
    const b = servingMedian(s!.runs, kind, "bare", "shipped");
    const o = servingMedian(s!.runs, kind, "sidecar", "source");
    const ok = a.rps !== undefined && b.rps !== undefined && a.p99 !== undefined &&
      b.p99 !== undefined &&
      a.rps / b.rps >= 0.9 && a.p99 / b.p99 <= 1.25;
    add({
      goal: "5",
      measure: `GET /endpoints ${kind}, ${s!.endpoints} endpoints: req/s, p99`,
      shipped: `${f(a.rps, 0)}, ${f(a.p99, 2)} ms`,
      source: `${f(o.rps, 0)}, ${f(o.p99, 2)} ms`,
      anchor: `bare ${f(b.rps, 0)}, ${f(b.p99, 2)} ms`,
      ratio: `${ratio(a.rps, b.rps)}, ${ratio(a.p99, b.p99)}`,
      target: "≥ 0.9×, ≤ 1.25×",
      verdict: a.rps !== undefined ? met(ok) : "",
    });
  }
  const paced = (v: Variant) => r.propagation?.find((p) => p.variant === v && p.changeGapMs > 0);
  if (r.propagation) {
    const [p, o] = [paced("shipped"), paced("source")];
    add({
      goal: "",
      measure: "propagation, Pod write → served, p50 / p99 (the sidecar's part)",
      shipped: p ? `${p50p99(p.writeToServed)} (${p50p99(p.eventToServed)})` : "–",
      source: o ? `${p50p99(o.writeToServed)} (${p50p99(o.eventToServed)})` : "–",
      anchor: "Go service, 5 s polling: 2,500 / 4,950 ms",
      ratio: p ? `${inv(p.writeToServed.p99, 4950)} (p99)` : "",
    });
  }
  if (r.apiLoad) {
    const a = r.apiLoad;
    const total = Object.values(a.sidecarRequests).reduce((x, y) => x + y, 0);
    add({
      goal: "",
      measure: `requests to the API server: completed in a ${f(a.windowS, 0)} s window; per hour`,
      // Plus the idle probe, one per connection per 30 s of silence between bookmarks (every
      // ~60 s): 60–120 an hour (report_sections.ts, "Load on the API server").
      shipped: `${total}; ${a.perHourAnalytical}/h WATCH + 60–120/h probes (analytical)`,
      anchor: "Go service: 720/h",
      ratio: `${inv(a.perHourAnalytical + 120, 720)} to ${inv(a.perHourAnalytical + 60, 720)}`,
    });
  }
  for (const st of r.startup ?? []) {
    const row = out.find((x) => x.measure.startsWith("start-up"));
    const cell = `${f(st.readyMedianMs, 0)} ms`;
    if (row) row[st.variant] = cell;
    else {
      add({
        goal: "",
        measure: `start-up, spawn → /readyz 200, median of ${st.runs.length}`,
        [st.variant]: cell,
      });
    }
  }
  for (const l of r.fleet?.levels.filter((x) => x.mode === "watch") ?? []) {
    const poll = r.fleet!.levels.find((x) => x.mode === "poll" && x.clients === l.clients);
    add({
      goal: "6",
      measure: `${
        f(l.clients, 0)
      } pods: API server per pod, VmRSS / CPU; change → last pod p50 / p99`,
      shipped: `${f(l.perClient.rssKB, 0)} kB / ${f(l.perClient.cpuMsPerS, 2)} ms/s; ${
        p50p99(l.toLast)
      }`,
      anchor: poll
        ? `polling 5 s: ${f(poll.perClient.rssKB, 0)} kB / ${
          f(poll.perClient.cpuMsPerS, 2)
        } ms/s; ${p50p99(poll.toLast)}`
        : "",
    });
  }
  const cell = lifetimesCell(r);
  if (cell) {
    add({
      goal: "",
      measure:
        `growth per 10,000 client lifetimes of each kind (SSE, blocking query, keep-alive), ${
          f(r.lifetimes!.lifetimes, 0)
        } of each, after the first ${f(r.lifetimes!.readEvery, 0)}`,
      shipped: cell,
    });
  }
  return out;
}

/** The results table of docs/performance.md. */
export function resultsTable(r: Results): string[] {
  return [
    "| goal | measure | shipped (image flags) | from source | anchor (same run, shipped flags) | ratio | target | |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows(r).map((x) =>
      `| ${x.goal} | ${x.measure} | ${x.shipped} | ${x.source} | ${x.anchor} | ${x.ratio} | ${x.target} | ${x.verdict} |`
    ),
  ];
}

/** The README's performance table (between its bench-table markers). */
export function renderReadmeTable(r: Results): string {
  return [
    `Last run: ${r.date.slice(0, 10)}, \`${r.command}\`, commit ${r.commit}. Shipped: the`,
    "image's flags (image/deno-flags.txt, 48 MB heap cap); from source: `deno task start`.",
    "",
    "| measure | shipped | from source | anchor (same run) | ratio | target | |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...rows(r).map((x) =>
      `| ${x.measure} | ${x.shipped} | ${x.source} | ${x.anchor} | ${x.ratio} | ${x.target} | ${x.verdict} |`
    ),
    "",
  ].join("\n");
}

/** The Markdown document for these results. */
export function renderMarkdown(r: Results): string {
  const scen = Object.entries(r.scenarios).map(([k, v]) =>
    `| ${k} | ${v.date.slice(0, 19).replace("T", " ")} | ${v.commit} | ${f(v.durationS, 0)} s |`
  );
  return [
    "# Performance",
    "",
    "Measured by `tools/deno task bench` (bench/run.ts and one file per scenario in bench/)",
    `against the real control plane (etcd, kube-apiserver ${r.kubernetes} and`,
    "kube-controller-manager on 127.0.0.1, see `tests/control_plane/`). This file is written by",
    "the run; the raw figures are in `bench/results/latest.json`. Other work may run on the same",
    "2-core machine, so every figure stands beside its anchor measured in the same run, and the",
    "ratios are what to compare between runs. Each sidecar figure is taken with the image's flags",
    "(shipped) and from source where they differ.",
    "",
    "## Results",
    "",
    ...resultsTable(r),
    "",
    "When each part was last measured (a run of one scenario replaces only its part):",
    "",
    "| scenario | date (UTC) | commit | took |",
    "| --- | --- | --- | --- |",
    ...scen,
    "",
    ...sections(r),
    ...handWritten("history_soak.md"),
    ...handWritten("code_measurements.md"),
  ].join("\n");
}

/** A hand-written part kept in bench/results/: the history checker's soak
 * (`tools/deno task soak`, history_soak.md: its figures are from a test run, not from a
 * scenario) and the measurements behind choices in the code (code_measurements.md). */
function handWritten(name: string): string[] {
  try {
    const text = Deno.readTextFileSync(new URL(`./results/${name}`, import.meta.url));
    return ["", ...text.trimEnd().split("\n")];
  } catch {
    return [];
  }
}

if (import.meta.main) {
  const json = new URL("./results/latest.json", import.meta.url);
  const results = JSON.parse(await Deno.readTextFile(json)) as Results;
  if (!results.scenarios) {
    console.error(`${json.pathname} is from before the bench had scenarios: run the bench again`);
    Deno.exit(1);
  }
  const doc = new URL("../docs/performance.md", import.meta.url);
  await Deno.writeTextFile(doc, renderMarkdown(results));
  console.error(`wrote ${doc.pathname}`);
}
