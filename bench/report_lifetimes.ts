/**
 * The report's section of scenario `lifetimes` (bench/lifetimes.ts): the sidecar's JS heap and
 * VmRSS through many client lifetimes of each kind, per 10,000 and as the series of readings.
 *
 * @module
 */
import { f } from "./_format.ts";
import type { Results } from "./types.ts";

/** "+0.12 MB" with its sign. */
function signed(x: number): string {
  return `${x >= 0 ? "+" : ""}${f(x, 2)} MB`;
}

/** The README row's cells: heap and VmRSS per 10,000 rounds after the first batch. */
export function lifetimesCell(r: Results): string | undefined {
  const x = r.lifetimes;
  if (!x) return undefined;
  return `heap ${signed(x.heapMBPer10kAfterFirst)}, VmRSS ${signed(x.rssMBPer10kAfterFirst)}`;
}

/** The section, or nothing when the scenario has not run. */
export function lifetimesSection(r: Results): string[] {
  const x = r.lifetimes;
  if (!x) return [];
  return [
    "## Clients that come and go (scenario `lifetimes`)",
    "",
    `${f(x.lifetimes, 0)} rounds, one after another, each one client lifetime of each kind`,
    "(tests/support/lifetimes.ts): an SSE stream read to its snapshot and dropped, a blocking",
    "query given up by its client, and keep-alive connections (two requests then a clean close,",
    "one cut mid-headers, one closed before its answer), against one sidecar in-cluster (a",
    `Service of 2 Pods) with the image's flags and V8's \`--gc-global\` (\`--v8-flags=${x.v8Flags}\`:`,
    "every collection a full one, so a heap reading is what is still reachable). The JS heap",
    '(`kpd_js_heap_bytes{kind="used"}`) and VmRSS are read after a 100-round warm-up, every',
    `${f(x.readEvery, 0)} rounds, and after a 2 s pause at the end. ${f(x.roundsPerS, 0)} rounds`,
    `a second here (${f(x.durationS, 0)} s); \`kpd_open_watchers\` at the end: ${x.openAfter}.`,
    "",
    "| growth per 10,000 rounds | JS heap | VmRSS |",
    "| --- | --- | --- |",
    `| start → end | ${signed(x.heapMBPer10k)} | ${signed(x.rssMBPer10k)} |`,
    `| after the first ${f(x.readEvery, 0)} → end | ${signed(x.heapMBPer10kAfterFirst)} | ${
      signed(x.rssMBPer10kAfterFirst)
    } |`,
    "",
    "| rounds | JS heap | VmRSS |",
    "| --- | --- | --- |",
    ...x.readings.map((s, i) =>
      `| ${f(s.lifetimes, 0)}${i === x.readings.length - 1 ? " (+2 s)" : ""} | ${
        f(s.heapMB)
      } MB | ${f(s.rssMB)} MB |`
    ),
    "",
  ];
}
