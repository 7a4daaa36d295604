/**
 * The sidecars' own JSON log lines in a history-checker run, kept beside the answers so that a
 * violation shows why: what each sidecar's reflectors did (backing off and why, relisted,
 * restarted a quiet watch) around the moment an answer went wrong. Lines are timed on the
 * run's clock (performance.now()) from their `time` field.
 *
 * @module
 */

/** One log line of one sidecar. */
export interface SidecarLine {
  /** The sidecar, as in {@linkcode ClientSpec.sidecar} (`namespace/names`, `namespace/all`). */
  sidecar: string;
  /** When it was written (ms, performance.now()). */
  t: number;
  /** The parsed line. */
  line: Record<string, unknown>;
}

/** Lines shown per violation: enough for a round of backoffs and relists, short enough to read. */
const LINES_PER_VIOLATION = 24;
/** How far before a violation its sidecar's lines are shown (ms): the fault and its retries. */
const LOOKBACK_MS = 60_000;
/** Lines that say nothing about the watch; left out of a violation's context. */
const NOISE = new Set(["started", "listening", "request"]);

/** The lines of the sidecars named, on the run's clock. */
export function collectLines(
  sidecars: { name: string; logs: Record<string, unknown>[] }[],
): SidecarLine[] {
  const out: SidecarLine[] = [];
  for (const s of sidecars) {
    for (const line of s.logs) {
      const wall = typeof line.time === "string" ? Date.parse(line.time) : NaN;
      out.push({ sidecar: s.name, t: wall - performance.timeOrigin, line });
    }
  }
  return out.sort((a, b) => a.t - b.t);
}

/** The lines of `sidecar` that explain a violation at `t` (ms): its watch's story in `span`
 * (default: the minute up to `t`), the last {@linkcode LINES_PER_VIOLATION} of them. */
export function linesAround(
  lines: SidecarLine[],
  o: { sidecar: string; t: number; t0: number; span?: [number, number] },
): string[] {
  const [from, to] = o.span ?? [o.t - LOOKBACK_MS, o.t + 2_000];
  const picked = lines.filter((l) =>
    l.sidecar === o.sidecar && l.t >= from && l.t <= to && !NOISE.has(String(l.line.msg))
  );
  const shown = picked.slice(-LINES_PER_VIOLATION);
  const s = (t: number) => `${((t - o.t0) / 1000).toFixed(2)}s`;
  return [
    `  log of ${o.sidecar} from ${s(from)} to ${s(to)} (last ${shown.length} of ` +
    `${picked.length} lines):`,
    ...shown.map((l) => {
      const { time: _time, level, msg, ...rest } = l.line;
      return `    ${((l.t - o.t0) / 1000).toFixed(2)}s ${level} ${msg} ${JSON.stringify(rest)}`;
    }),
  ];
}
