/**
 * The history checker's clients that come and go, logged like the others so every answer they
 * get is checked the same way: an all-Services SSE reader that drops its stream after a short,
 * seeded random time and resumes with `Last-Event-ID` (the resumes are what the checker's
 * "nothing skipped on resume" reads), a loop of short blocking queries of which some are
 * dropped before they answer, and a client of keep-alive connections that asks a few times on
 * each and then drops it, sometimes in the middle of a request.
 *
 * @module
 */
import { sleep } from "../cluster/wait.ts";
import type { Recorder } from "./recorder.ts";
import { prng } from "./schedule.ts";

/** How long the churning SSE reader holds each stream (ms): random in this range. */
const SSE_HOLD_MS = [300, 3_000] as const;
/** The short blocking queries' `wait`, s: random in this range (whole seconds). */
const BLOCK_WAIT_S = [1, 3] as const;
/** Share of blocking queries dropped before they answer. */
const BLOCK_DROP = 0.3;
/** Requests per keep-alive connection: random in this range. */
const KEEPALIVE_REQUESTS = [1, 6] as const;
/** Pause between two requests of a keep-alive connection (ms). */
const KEEPALIVE_GAP_MS = 150;
/** A keep-alive answer that takes longer than this counts as failed (ms). */
const KEEPALIVE_TIMEOUT_MS = 5_000;

function between(rand: () => number, [lo, hi]: readonly [number, number]): number {
  return lo + rand() * (hi - lo);
}

/** Reads `url` (an SSE route) in streams held a short random time each, resuming every one
 * with the last event id seen. */
export function churnSse(
  rec: Recorder,
  client: string,
  url: string,
  o: { subject: string; seed: number },
): void {
  const rand = prng(o.seed);
  rec.spawn(client, async (stop) => {
    let lastId: string | undefined;
    while (!stop.aborted) {
      const hold = AbortSignal.any([stop, AbortSignal.timeout(between(rand, SSE_HOLD_MS))]);
      try {
        const r = await rec.readStream(client, url, { subject: o.subject, lastId, signal: hold });
        lastId = r.lastId;
        if (r.ended) rec.log(client, "sse", o.subject, 200, "", undefined).event = "(stream ended)";
      } catch (e) {
        if (stop.aborted) break;
        // Our own drop ends the read with an abort: resume from what was read.
        if (!hold.aborted) {
          rec.log(client, "sse", o.subject, 0, String(e));
          await sleep(250);
        }
      }
      lastId = lastSeen(rec, client) ?? lastId;
    }
  });
}

/** The last event id `client` was given (what it resumes with). */
function lastSeen(rec: Recorder, client: string): string | undefined {
  for (let i = rec.answers.length - 1; i >= 0; i--) {
    const a = rec.answers[i]!;
    if (a.client === client && a.kind === "sse" && a.event && !a.event.startsWith("(")) {
      if (a.index !== undefined) return String(a.index);
    }
  }
  return undefined;
}

/** Loops short blocking queries on `url` (a Service's route), passing back the index; some
 * are dropped before they answer (not logged: there is no answer). */
export function shortBlocks(
  rec: Recorder,
  client: string,
  url: string,
  o: { subject: string; seed: number },
): void {
  const rand = prng(o.seed);
  rec.spawn(client, async (stop) => {
    let index = 0;
    while (!stop.aborted) {
      const wait = Math.round(between(rand, BLOCK_WAIT_S));
      const drop = rand() < BLOCK_DROP;
      const signal = drop
        ? AbortSignal.any([stop, AbortSignal.timeout(rand() * wait * 1_000)])
        : AbortSignal.any([stop, AbortSignal.timeout(wait * 1_000 + 5_000)]);
      try {
        const sep = url.includes("?") ? "&" : "?";
        const res = await fetch(`${url}${sep}index=${index}&wait=${wait}s`, { signal });
        const body = await res.text();
        const a = rec.log(client, "service", o.subject, res.status, body, res.headers);
        if (a.status === 200 && a.index !== undefined) index = a.index;
        else await sleep(250);
      } catch (e) {
        if (stop.aborted) break;
        if (!drop) {
          rec.log(client, "service", o.subject, 0, String(e));
          await sleep(250);
        }
      }
    }
  });
}

/** Opens keep-alive connections to `origin` (http://host:port) and asks `path` a few times on
 * each, then drops it: after an answer, or halfway through writing a request. */
export function keepAliveChurn(
  rec: Recorder,
  client: string,
  origin: string,
  o: { path: string; subject: string; seed: number },
): void {
  const rand = prng(o.seed);
  const { hostname, port } = new URL(origin);
  const request = new TextEncoder().encode(
    `GET ${o.path} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: keep-alive\r\n\r\n`,
  );
  rec.spawn(client, async (stop) => {
    while (!stop.aborted) {
      let conn: Deno.TcpConn | undefined;
      try {
        conn = await Deno.connect({ hostname, port: Number(port) });
        const reader = new ResponseReader(conn);
        const n = Math.floor(between(rand, KEEPALIVE_REQUESTS));
        for (let i = 0; i < n && !stop.aborted; i++) {
          await conn.write(request);
          const res = await reader.next(KEEPALIVE_TIMEOUT_MS);
          rec.log(client, "service", o.subject, res.status, res.body, res.headers);
          await sleep(KEEPALIVE_GAP_MS);
        }
        // Half a request, then the connection goes away.
        if (rand() < 0.5) await conn.write(request.subarray(0, request.length >> 1));
      } catch (e) {
        if (stop.aborted) break;
        rec.log(client, "service", o.subject, 0, String(e));
        await sleep(250);
      } finally {
        try {
          conn?.close();
        } catch {
          // Already closed.
        }
      }
    }
  });
}

/** Reads HTTP/1.1 responses with a Content-Length, one after another, off one connection. */
class ResponseReader {
  #conn: Deno.TcpConn;
  #buf = new Uint8Array(0);
  #decoder = new TextDecoder();

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  async next(timeoutMs: number): Promise<{ status: number; headers: Headers; body: string }> {
    const deadline = performance.now() + timeoutMs;
    let end: number;
    while ((end = indexOf(this.#buf, [13, 10, 13, 10])) < 0) await this.#more(deadline);
    const head = this.#decoder.decode(this.#buf.subarray(0, end)).split("\r\n");
    const status = Number(head[0]!.split(" ")[1]);
    const headers = new Headers();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(":");
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get("Content-Length"));
    if (!Number.isInteger(length)) {
      throw new Error(`keep-alive answer without Content-Length: ${head.join(" | ")}`);
    }
    const start = end + 4;
    while (this.#buf.length < start + length) await this.#more(deadline);
    const body = this.#decoder.decode(this.#buf.subarray(start, start + length));
    this.#buf = this.#buf.slice(start + length);
    return { status, headers, body };
  }

  async #more(deadline: number): Promise<void> {
    const chunk = new Uint8Array(16_384);
    const timeout = Math.max(0, deadline - performance.now());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      this.#conn.read(chunk),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("keep-alive answer timed out")), timeout);
      }),
    ]).finally(() => clearTimeout(timer));
    if (n === null) throw new Error("the sidecar closed the keep-alive connection");
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
  }
}

function indexOf(buf: Uint8Array, pattern: number[]): number {
  outer: for (let i = 0; i + pattern.length <= buf.length; i++) {
    for (let j = 0; j < pattern.length; j++) if (buf[i + j] !== pattern[j]) continue outer;
    return i;
  }
  return -1;
}
