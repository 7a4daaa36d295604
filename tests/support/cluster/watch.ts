/**
 * Watch streams on the real API server: opens a watch with Deno's fetch and reads its events
 * one at a time, with a timeout; a test that opens a watch must close it.
 *
 * @module
 */

import { KubeError, kubeFetch, type KubeRequestOptions } from "./http.ts";
import type { KubeObject, WatchEvent } from "./types.ts";

/** An open watch: read events one by one, then close it. */
export interface WatchStream<T = KubeObject> {
  /**
   * The next event; undefined when the server ended the stream; rejects on timeout or a connection
   * error.
   */
  next(options?: { timeoutMs?: number }): Promise<WatchEvent<T> | undefined>;
  /** Reads until an event matches (default timeout 20 s); rejects if the stream ends first. */
  waitFor(
    match: (event: WatchEvent<T>) => boolean,
    options?: { timeoutMs?: number },
  ): Promise<WatchEvent<T>>;
  /** Cancels the stream (idempotent). */
  close(): Promise<void>;
}

/**
 * Opens a watch (path without `watch=1`, e.g. a list path with a resourceVersion); throws a
 * {@linkcode KubeError} unless the server answers 200.
 */
export async function openWatch<T = KubeObject>(
  path: string,
  options: Omit<KubeRequestOptions, "body" | "contentType"> = {},
): Promise<WatchStream<T>> {
  const sep = path.includes("?") ? "&" : "?";
  const res = await kubeFetch("GET", `${path}${sep}watch=1`, options);
  if (res.status !== 200 || !res.body) {
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    throw new KubeError(`WATCH ${path}`, { status: res.status, body });
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  let ended = false;
  let closed = false;

  async function next(opts: { timeoutMs?: number } = {}): Promise<WatchEvent<T> | undefined> {
    while (true) {
      const nl = buffer.indexOf("\n");
      if (nl >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line) return JSON.parse(line) as WatchEvent<T>;
        continue;
      }
      if (ended || closed) {
        const rest = buffer.trim();
        buffer = "";
        return rest ? JSON.parse(rest) as WatchEvent<T> : undefined;
      }
      if (!pending) {
        pending = reader.read();
        // A read left pending by a timeout may fail later (e.g. a reset): never unhandled.
        pending.catch(() => {});
      }
      const result = await withTimeout(pending, opts.timeoutMs ?? 20_000, `a watch event`);
      pending = undefined;
      if (result.done) ended = true;
      else buffer += decoder.decode(result.value, { stream: true });
    }
  }

  return {
    next,
    async waitFor(match, opts = {}) {
      const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
      while (true) {
        const event = await next({ timeoutMs: Math.max(1, deadline - Date.now()) });
        if (!event) throw new Error(`watch ${path} ended before the expected event`);
        if (match(event)) return event;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await reader.cancel().catch(() => {});
    },
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
