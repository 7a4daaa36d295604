/**
 * A hostile client, run inside a network namespace (`ip netns exec NAME deno run`) so that the
 * sidecar sees it as another Pod. Two modes, both bounded in count and time and stopping by
 * themselves; the result is one JSON line on stdout.
 *
 * - `fuzz`: a seeded stream of raw HTTP/1.1 requests (methods, request targets in every form and
 *   encoding, Host headers odd or missing), one connection each; reports every answer's status
 *   and whether its body was health, metrics or something else.
 * - `flood`: opens half-open connections (a request line, never the end of the headers) and
 *   idle keep-alive ones (one /health, then nothing), holds them, and reports how many the
 *   sidecar admitted and when it closed them.
 *
 * @module
 */
import { prng } from "./history/schedule.ts";
import { readUntilClosed } from "./raw_read.ts";

/** Settings of a run, as the first argument (JSON). */
export type HostileRun =
  | { mode: "fuzz"; targets: { host: string; port: number }[]; seed: number; count: number }
  | {
    mode: "flood";
    host: string;
    port: number;
    halfOpen: number;
    idle: number;
    holdMs: number;
    /** A connection closed unanswered sooner than this was refused, not timed out. Default
     * 1,000 ms; keep it under the sidecar's header time limit: a refused connection is closed
     * at once, but on a loaded machine "at once" can be seconds behind thousands of accepts. */
    refusedWithinMs?: number;
  };

/** One fuzz answer. */
export interface FuzzAnswer {
  port: number;
  request: string;
  status: number;
  /** "ok" (a health body), "metrics", "redirect", "error-json", "none" or "other". */
  body: string;
  /** The body's first 200 characters when it is "other". */
  sample?: string;
}

/** What a flood saw. */
export interface FloodResult {
  /** Connections answered at all (the idle ones' /health) or held open past 1 s. */
  admitted: { halfOpen: number; idle: number };
  /** Closed by the sidecar at once (within 1 s, nothing answered). */
  refused: number;
  /** Per admitted connection, ms from opening to the sidecar closing it; -1: still open. */
  closedAfterMs: { halfOpen: number[]; idle: number[] };
}

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND", "get"];
const PATHS = [
  "/endpoints",
  "/endpoints/",
  "/endpoints/last_updated",
  "/v1/services",
  "/v1/services/NS/web",
  "/v1/watch",
  "/metrics",
  "/livez",
  "/readyz",
  "/health",
  "/health/x",
  "/",
  "",
];
const WRAPS: ((p: string) => string)[] = [
  (p) => p,
  (p) => `/endpoints/..${p}`,
  (p) => `/endpoints/%2e%2e${p}`,
  (p) => `/health/..${p}`,
  (p) => `/livez/../..${p}`,
  (p) => `/health/%2e%2E${p}`,
  (p) => `/./${p}`,
  (p) => `//${p}`,
  (p) => p.replace(/\//g, "%2f"),
  (p) => p.replace(/\//g, "\\"),
  (p) => `/health\\..${p}`,
  (p) => `http://x${p}`,
  (p) => `http://[${p}`,
  (p) => `HTTP://10.0.0.1:99999${p}`,
  (p) => `${p}?a=%zz&index=1&wait=1s`,
  (p) => `${p}%`,
  (p) => `${p}%00`,
  (p) => `${p}#frag`,
  (p) => `/${"a/".repeat(3000)}..${p}`,
  (p) => p.replace(/e/g, "%65"),
  () => "*",
];
const HOSTS: (string | undefined)[] = [
  "x",
  "[",
  "a b",
  "x:99999",
  "h/p",
  "h?x",
  "h#x",
  "h\\x",
  "user@h",
  "",
  undefined,
  "[::1]:80",
  "localhost",
  "%zz",
];

function request(rand: () => number, ns: string): string {
  const pick = <T>(a: T[]) => a[Math.floor(rand() * a.length)]!;
  const method = pick(METHODS);
  const target = pick(WRAPS)(pick(PATHS).replace("NS", ns)) || "/";
  const host = pick(HOSTS);
  const lines = [`${method} ${target} HTTP/1.1`];
  if (host !== undefined) lines.push(`Host: ${host}`);
  if (rand() < 0.2) lines.push(`Host: second`);
  if (rand() < 0.2) lines.push("X-Forwarded-For: 127.0.0.1", "Forwarded: for=127.0.0.1");
  // A body the server can read to its end, so each exchange ends when the server closes.
  const body = rand();
  if (body < 0.1) lines.push("Transfer-Encoding: chunked");
  else if (body < 0.2) lines.push("Content-Length: 5");
  lines.push(
    "Connection: close",
    "",
    body < 0.1 ? "5\r\nhello\r\n0\r\n\r\n" : body < 0.2 ? "hello" : "",
  );
  return lines.join("\r\n");
}

function classify(status: number, body: string): string {
  if (body === "ok") return "ok";
  if (body === "") return status >= 300 && status < 400 ? "redirect" : "none";
  if (/^# HELP /.test(body)) return "metrics";
  try {
    if (typeof JSON.parse(body).error === "string") return "error-json";
  } catch {
    // Not JSON.
  }
  return "other";
}

async function exchange(host: string, port: number, text: string): Promise<[number, string]> {
  const conn = await Deno.connect({ hostname: host, port });
  try {
    await conn.write(new TextEncoder().encode(text)).catch(() => 0);
    const raw = await readUntilClosed(conn, 3_000);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0);
    const head = raw.indexOf("\r\n\r\n");
    return [status, head < 0 ? "" : raw.slice(head + 4)];
  } finally {
    conn.close();
  }
}

async function fuzz(run: Extract<HostileRun, { mode: "fuzz" }>): Promise<FuzzAnswer[]> {
  const rand = prng(run.seed);
  const out: FuzzAnswer[] = [];
  for (let i = 0; i < run.count; i++) {
    const t = run.targets[i % run.targets.length]!;
    const req = request(rand, "ns");
    const [status, body] = await exchange(t.host, t.port, req);
    const kind = classify(status, body);
    out.push({
      port: t.port,
      request: req.split("\r\n").slice(0, 2).join(" | ").slice(0, 200),
      status,
      body: kind,
      sample: kind === "other" ? body.slice(0, 200) : undefined,
    });
  }
  return out;
}

async function flood(run: Extract<HostileRun, { mode: "flood" }>): Promise<FloodResult> {
  const started = Date.now();
  const result: FloodResult = {
    admitted: { halfOpen: 0, idle: 0 },
    refused: 0,
    closedAfterMs: { halfOpen: [], idle: [] },
  };
  const enc = new TextEncoder();
  let ending = false;
  const watch = (conn: Deno.Conn, kind: "halfOpen" | "idle", opened: number) => {
    const buf = new Uint8Array(4096);
    let answered = false;
    return (async () => {
      for (;;) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) break;
        answered = true;
      }
      const after = ending ? -1 : Date.now() - opened;
      if (!answered && after >= 0 && after < (run.refusedWithinMs ?? 1_000)) result.refused++;
      else {
        result.admitted[kind]++;
        result.closedAfterMs[kind].push(after);
      }
    })();
  };
  const conns: Deno.Conn[] = [];
  const reads: Promise<void>[] = [];
  const open = async (kind: "halfOpen" | "idle") => {
    const conn = await Deno.connect({ hostname: run.host, port: run.port }).catch(() => undefined);
    if (!conn) {
      result.refused++;
      return;
    }
    conns.push(conn);
    const text = kind === "idle"
      ? "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
      : "GET /health HTTP/1.1\r\nHost: x\r\n";
    await conn.write(enc.encode(text)).catch(() => 0);
    reads.push(watch(conn, kind, Date.now()));
  };
  // Interleaved, so both kinds meet the caps.
  const kinds: ("halfOpen" | "idle")[] = [];
  for (let i = 0; i < Math.max(run.halfOpen, run.idle); i++) {
    if (i < run.halfOpen) kinds.push("halfOpen");
    if (i < run.idle) kinds.push("idle");
  }
  // Interleaved, 50 at a time: fast, without a SYN burst the listen backlog would drop.
  for (let i = 0; i < kinds.length; i += 50) {
    await Promise.all(kinds.slice(i, i + 50).map(open));
  }
  const left = run.holdMs - (Date.now() - started);
  await Promise.race([Promise.all(reads), new Promise((r) => setTimeout(r, Math.max(0, left)))]);
  // Still open at the end: counted as admitted and not closed (-1).
  ending = true;
  for (const c of conns) {
    try {
      c.close();
    } catch {
      // Closed by the sidecar.
    }
  }
  await Promise.all(reads);
  return result;
}

if (import.meta.main) {
  const run = JSON.parse(Deno.args[0]!) as HostileRun;
  const out = run.mode === "fuzz" ? await fuzz(run) : await flood(run);
  console.log(JSON.stringify(out));
  Deno.exit(0);
}
