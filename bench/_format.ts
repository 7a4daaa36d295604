/**
 * Number and table formatting shared by the report's files (bench/report*.ts).
 *
 * @module
 */
import type { ProcMemory, Summary } from "./util.ts";

/** A number with `digits` decimals and thousands separators; "–" when missing. */
export function f(x: number | undefined, digits = 1): string {
  if (x === undefined || Number.isNaN(x)) return "–";
  return x.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** a / b as "1.23×". */
export function ratio(a: number | undefined, b: number | undefined): string {
  return a !== undefined && b ? `${f(a / b, 2)}×` : "–";
}

/** "1/N" for a figure N times smaller than its anchor. */
export function inv(a: number, b: number): string {
  if (!b) return "–";
  if (a === 0) return "0";
  return `1/${f(b / a, 0)}`;
}

/** **met** or **missed**. */
export function met(ok: boolean): string {
  return ok ? "**met**" : "**missed**";
}

/** One percentile of a summary in ms. */
export function ms(s: Summary | undefined, p: "p50" | "p90" | "p99" | "max" = "p99"): string {
  return s ? `${f(s[p], 1)} ms` : "–";
}

/** "p50 / p99 ms" of a summary. */
export function p50p99(s: Summary | undefined): string {
  return s ? `${f(s.p50, 1)} / ${f(s.p99, 1)} ms` : "–";
}

/** A table row of a summary: n, min, p50, p90, p99, max, mean. */
export function summaryRow(name: string, s: Summary | undefined): string {
  if (!s) return `| ${name} | – | – | – | – | – | – | – |`;
  return `| ${name} | ${s.n} | ${f(s.min, 2)} | ${f(s.p50, 2)} | ${f(s.p90, 2)} | ${
    f(s.p99, 2)
  } | ${f(s.max, 2)} | ${f(s.mean, 2)} |`;
}

/** VmRSS / VmHWM / RssAnon / RssFile cells. */
export function memCells(m: ProcMemory | undefined): string {
  if (!m) return "– | – | – | –";
  return `${f(m.rssMB)} MB | ${f(m.hwmMB)} MB | ${f(m.anonMB)} MB | ${f(m.fileMB)} MB`;
}
