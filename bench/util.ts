/**
 * Measuring helpers for the bench scenarios: time, /proc readings (memory, CPU time),
 * percentiles, wrk runs and their parsed output, Prometheus counters, and machine facts.
 *
 * @module
 */

/** Wall-clock milliseconds with sub-millisecond resolution (timeOrigin + monotonic now). */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rounds to `digits` decimals. */
export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Nearest-rank percentile (p in 0..100) of the values; NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Summary of a sample: count, min, p50, p90, p99, max, mean (same unit as the input). */
export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Summarizes a sample, rounded to `digits` decimals. */
export function summarize(values: number[], digits = 2): Summary {
  const mean = values.reduce((a, b) => a + b, 0) / (values.length || 1);
  return {
    n: values.length,
    // Not Math.min(...values): a long sample overflows the call stack.
    min: round(values.reduce((a, b) => Math.min(a, b), Infinity), digits),
    p50: round(percentile(values, 50), digits),
    p90: round(percentile(values, 90), digits),
    p99: round(percentile(values, 99), digits),
    max: round(values.reduce((a, b) => Math.max(a, b), -Infinity), digits),
    mean: round(mean, digits),
  };
}

/** Memory of a process from /proc/PID/status, in MB (10^6 bytes) as `ps`/`top` report kB. */
export interface ProcMemory {
  /** Resident set size now. */
  rssMB: number;
  /** Peak resident set size (high-water mark). */
  hwmMB: number;
  /** Anonymous resident memory (heaps: V8, Rust allocator). */
  anonMB: number;
  /** File-backed resident memory (the mapped deno binary's touched pages, shared libraries). */
  fileMB: number;
  /** OS threads. */
  threads: number;
}

/** Reads VmRSS, VmHWM, RssAnon, RssFile and Threads of a process. */
export function procMemory(pid: number): ProcMemory {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (key: string): number => {
    const m = text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"));
    return m ? Number(m[1]) : NaN;
  };
  const threads = Number(text.match(/^Threads:\s+(\d+)/m)?.[1] ?? NaN);
  return {
    rssMB: round(kb("VmRSS") * 1024 / 1e6, 1),
    hwmMB: round(kb("VmHWM") * 1024 / 1e6, 1),
    anonMB: round(kb("RssAnon") * 1024 / 1e6, 1),
    fileMB: round(kb("RssFile") * 1024 / 1e6, 1),
    threads,
  };
}

/** Clock ticks per second of /proc/PID/stat (sysconf(_SC_CLK_TCK), 100 on Linux). */
const CLK_TCK = 100;

/** CPU time (user + system) a process has used so far, in ms (10 ms resolution). */
export function procCpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // The command name is in parentheses and may contain spaces: split after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat(5) (utime, stime) are at 11 and 12 once pid and comm are removed.
  return (Number(fields[11]) + Number(fields[12])) * 1000 / CLK_TCK;
}

/** A free TCP port on 127.0.0.1 (bound and released; the caller binds it soon after). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** What one wrk run reported. */
export interface WrkResult {
  /** The command line, with the real port. */
  command: string;
  requestsPerSec: number;
  /** Latency percentiles in ms, from `--latency`. */
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  /** Requests completed. */
  requests: number;
  /** Socket errors (connect, read, write, timeout) and non-2xx/3xx answers. */
  errors: number;
  transferPerSec: string;
}

function toMs(value: string): number {
  const m = value.match(/^([\d.]+)(us|ms|s|m)$/);
  if (!m) return NaN;
  const x = Number(m[1]);
  return m[2] === "us" ? x / 1000 : m[2] === "ms" ? x : m[2] === "s" ? x * 1000 : x * 60_000;
}

/** Parses wrk's text output (with `--latency`). */
function parseWrk(out: string, command: string): WrkResult {
  const pct = (p: string) => toMs(out.match(new RegExp(`^\\s+${p}%\\s+(\\S+)`, "m"))?.[1] ?? "");
  const sock = out.match(
    /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/,
  );
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  const sockErrors = sock ? sock.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    command,
    requestsPerSec: Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? NaN),
    p50Ms: pct("50"),
    p90Ms: pct("90"),
    p99Ms: pct("99"),
    requests: Number(out.match(/(\d+) requests in/)?.[1] ?? NaN),
    errors: sockErrors + non2xx,
    transferPerSec: out.match(/Transfer\/sec:\s+(\S+)/)?.[1] ?? "",
  };
}

/** Runs wrk with these arguments and parses its output; throws if wrk fails. */
export async function runWrk(args: string[]): Promise<WrkResult> {
  const out = await new Deno.Command("wrk", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  const command = "wrk " + args.map((a) => /[\s"'$]/.test(a) ? `'${a}'` : a).join(" ");
  if (!out.success) {
    throw new Error(`${command} failed: ${new TextDecoder().decode(out.stderr)}${text}`);
  }
  return parseWrk(text, command);
}

/** Whether a program is on PATH. */
export function hasProgram(name: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** Counters of one Prometheus metric family, keyed by their label set. */
export type Counters = Map<string, { labels: Record<string, string>; value: number }>;

/** Parses the samples of `family` from Prometheus text, keeping those `keep` accepts. */
export function parseMetric(
  text: string,
  family: string,
  keep: (labels: Record<string, string>) => boolean = () => true,
): Counters {
  const out: Counters = new Map();
  for (const line of text.split("\n")) {
    if (!line.startsWith(family + "{")) continue;
    const close = line.lastIndexOf("}");
    const labelText = line.slice(family.length + 1, close);
    const labels: Record<string, string> = {};
    for (const m of labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!;
    if (!keep(labels)) continue;
    out.set(labelText, { labels, value: Number(line.slice(close + 1).trim()) });
  }
  return out;
}

/** Per-key difference `after - before` (keys only in `after` count from 0), non-zero only. */
export function diffCounters(before: Counters, after: Counters): Counters {
  const out: Counters = new Map();
  for (const [k, v] of after) {
    const d = v.value - (before.get(k)?.value ?? 0);
    if (d !== 0) out.set(k, { labels: v.labels, value: d });
  }
  return out;
}

/** Sums counters grouped by the given labels, e.g. ["scope", "verb"] → "namespace/LIST". */
export function groupCounters(c: Counters, by: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { labels, value } of c.values()) {
    const key = by.map((l) => labels[l] ?? "").join("/");
    out[key] = (out[key] ?? 0) + value;
  }
  return out;
}

/** Machine facts for the report. */
export function machineInfo(): Record<string, string | number> {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  const model = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown";
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  const memKb = Number(
    Deno.readTextFileSync("/proc/meminfo").match(/^MemTotal:\s+(\d+)/m)?.[1] ?? 0,
  );
  return {
    cpu: model,
    cores,
    memoryGiB: round(memKb / 1024 / 1024, 1),
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    loadavg: Deno.readTextFileSync("/proc/loadavg").trim(),
  };
}
