/**
 * Clients that come and go, for tests/churn_test.ts and bench/lifetimes.ts: one client lifetime
 * of each kind (an SSE stream read to its snapshot and dropped, a blocking query the client gives
 * up on, keep-alive connections used and closed cleanly or cut mid-request), the sidecar run with
 * the image's flags plus V8's `--gc-global`, and its JS heap (through /metrics) and VmRSS read
 * between batches of lifetimes.
 *
 * @module
 */
import { rssBytes, shippedFlags } from "./fanout_load.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The Deno flags of image/deno-flags.txt (the mount at `saDir`), with V8's `--gc-global`
 * added to its `--v8-flags`: every collection a full one, so a heap reading is close to what is
 * still reachable, not what a young-generation scavenge left (readings without it wandered
 * 8-15 MB and back with no leak). */
export async function soakFlags(saDir: string): Promise<string[]> {
  const flags = await shippedFlags(saDir);
  if (!flags.some((f) => f.startsWith("--v8-flags="))) {
    throw new Error("image/deno-flags.txt has no --v8-flags line to add --gc-global to");
  }
  return flags.map((f) => f.startsWith("--v8-flags=") ? `${f},--gc-global` : f);
}

/** Where the lifetimes go: a sidecar serving one Service. */
export interface LifetimeTarget {
  /** Base URL, e.g. http://127.0.0.1:41234. */
  url: string;
  /** Its OS process id (for VmRSS). */
  pid: number;
  /** The Service's path under /v1/services and /v1/watch: `namespace/name`. */
  service: string;
  /** The Service's current X-Discovery-Index (blocking queries wait on it). */
  index: string;
  /** The HTTP client of the SSE streams and blocking queries. */
  client: Deno.HttpClient;
}

/** One SSE stream: opened, read until its snapshot event, and dropped. */
export async function sseLifetime(t: LifetimeTarget): Promise<void> {
  const stream = new AbortController();
  const r = await fetch(`${t.url}/v1/watch/${t.service}`, {
    signal: stream.signal,
    client: t.client,
  });
  const reader = r.body!.getReader();
  let text = "";
  while (!text.includes("event: snapshot")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`SSE stream ended before its snapshot: ${text}`);
    text += decoder.decode(value);
  }
  stream.abort();
  await reader.cancel().catch(() => {});
}

/** One blocking query on the current index, given up by its client before it answers. */
export async function blockingLifetime(t: LifetimeTarget): Promise<void> {
  const query = new AbortController();
  const held = fetch(`${t.url}/v1/services/${t.service}?index=${t.index}&wait=60s`, {
    signal: query.signal,
    client: t.client,
  }).then((r) => r.body?.cancel()).catch(() => {});
  // Time for the request to reach the sidecar's wait (a loopback round trip is ~0.1 ms).
  await new Promise((r) => setTimeout(r, 2));
  query.abort();
  await held;
}

/** Reads one whole HTTP/1.1 response (Content-Length or chunked) from `conn`, after `rest`;
 * returns what came after it. */
async function readResponse(conn: Deno.TcpConn, rest: string): Promise<string> {
  let text = rest;
  const buf = new Uint8Array(16 * 1024);
  const more = async () => {
    const n = await conn.read(buf);
    if (n === null) throw new Error(`connection ended mid-response: ${text.slice(0, 200)}`);
    text += decoder.decode(buf.subarray(0, n));
  };
  while (!text.includes("\r\n\r\n")) await more();
  const headEnd = text.indexOf("\r\n\r\n") + 4;
  const head = text.slice(0, headEnd).toLowerCase();
  if (!head.startsWith("http/1.1 200")) throw new Error(`expected 200: ${head.split("\r\n")[0]}`);
  const length = head.match(/\r\ncontent-length: (\d+)/)?.[1];
  if (length !== undefined) {
    // Bodies here are ASCII JSON: characters are bytes.
    while (text.length < headEnd + Number(length)) await more();
    return text.slice(headEnd + Number(length));
  }
  while (!text.includes("\r\n0\r\n\r\n", headEnd - 2)) await more();
  return text.slice(text.indexOf("\r\n0\r\n\r\n", headEnd - 2) + 7);
}

/**
 * Keep-alive connections of three ways out: one that asks for the Service twice and is closed
 * after the answers, one cut in the middle of its request's headers, and one closed as soon as
 * its request is sent (the answer is written to a closed socket).
 */
export async function keepAliveLifetime(t: LifetimeTarget): Promise<void> {
  const { hostname, port } = new URL(t.url);
  const connect = () => Deno.connect({ hostname, port: Number(port) });
  const request = `GET /v1/services/${t.service} HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`;
  const used = await connect();
  try {
    let rest = "";
    for (let i = 0; i < 2; i++) {
      await used.write(encoder.encode(request));
      rest = await readResponse(used, rest);
    }
  } finally {
    used.close();
  }
  const cut = await connect();
  await cut.write(encoder.encode(request.slice(0, request.indexOf("\r\n") + 2)));
  cut.close();
  const unread = await connect();
  await unread.write(encoder.encode(request));
  unread.close();
}

/** The three kinds, one lifetime of each a round. */
export const LIFETIMES = [sseLifetime, blockingLifetime, keepAliveLifetime];

/** The sidecar's memory after some lifetimes of each kind. */
export interface Reading {
  /** Lifetimes of each kind so far (after the warm-up). */
  lifetimes: number;
  /** `kpd_js_heap_bytes{kind="used"}`. */
  heapBytes: number;
  /** VmRSS of the process. */
  rssBytes: number;
}

/** The sidecar's JS heap used (from /metrics) and VmRSS now. */
export async function readMemory(t: LifetimeTarget, lifetimes: number): Promise<Reading> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const heap = text.match(/^kpd_js_heap_bytes\{kind="used"\} (\d+)$/m);
  if (!heap) throw new Error(`no kpd_js_heap_bytes{kind="used"} in /metrics`);
  return { lifetimes, heapBytes: Number(heap[1]), rssBytes: await rssBytes(t.pid) };
}

/** Options for {@linkcode churn}. */
export interface ChurnOptions {
  /** Rounds of lifetimes (one of each kind a round). */
  lifetimes: number;
  /** Memory is read after each this many rounds, and at the end. */
  readEvery: number;
  /** Rounds run at once (default 1: one after another). */
  concurrency?: number;
  /** Called with each reading as it is taken. */
  onReading?: (r: Reading) => void;
}

/** Runs the rounds, reading memory before (after a warm-up and a pause), after every
 * `readEvery` and after a pause at the end; returns the readings, the first one the baseline. */
export async function churn(t: LifetimeTarget, options: ChurnOptions): Promise<Reading[]> {
  const take = async (n: number) => {
    const r = await readMemory(t, n);
    options.onReading?.(r);
    readings.push(r);
  };
  const rounds = async (n: number) => {
    let left = n;
    const worker = async () => {
      while (left > 0) {
        left--;
        for (const lifetime of LIFETIMES) await lifetime(t);
      }
    };
    await Promise.all(Array.from({ length: options.concurrency ?? 1 }, worker));
  };
  const readings: Reading[] = [];
  // Warm-up: code compiled and caches filled once, then time for the sweeps and timers to end.
  await rounds(100);
  await new Promise((r) => setTimeout(r, 2_000));
  await take(0);
  for (let done = 0; done < options.lifetimes;) {
    const n = Math.min(options.readEvery, options.lifetimes - done);
    await rounds(n);
    done += n;
    await take(done);
  }
  // Time for the last blocking queries' sweep and closed connections to finish.
  await new Promise((r) => setTimeout(r, 2_000));
  await take(options.lifetimes);
  return readings;
}
