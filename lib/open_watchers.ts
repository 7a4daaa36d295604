/**
 * The one owner of clients that wait, SSE streams and blocking queries: their count (what
 * `kpd_open_watchers` shows), the limit `--max-watchers` puts on it, the admission of each new
 * one against that limit with the release that ends it, and a promise for the moment none is
 * open, which the drain at shutdown waits on instead of polling the counts.
 *
 * @module
 */
import { DRAIN_MS } from "./sse.ts";

/** Longest wait for blocking queries and SSE streams to end after the drain signal: they end
 * at once (the current state is in memory), and a stream whose client does not read is cut
 * after DRAIN_MS, so this only bounds a stuck client. */
const DRAIN_MAX_MS = DRAIN_MS + 500;
/** After the last long-poll ended, time for its response to be written before the server stops
 * (Deno drops a response that is written after shutdown began). */
const DRAIN_FLUSH_MS = 50;

/** What waits: an SSE stream or a blocking query. */
export type WatcherKind = "sse" | "blocking";

/** Open SSE streams and blocking queries up to a limit, and SSE streams closed for not reading. */
export class OpenWatchers {
  /** At most this many SSE streams and blocking queries at once (`--max-watchers`). */
  readonly max: number;
  #open: Record<WatcherKind, number> = { sse: 0, blocking: 0 };
  #slowClosed = 0;
  #idle: (() => void)[] = [];

  /** Counts clients that wait, admitting at most `max` at once. */
  constructor(max: number) {
    this.max = max;
  }

  /** Open SSE streams. */
  get sse(): number {
    return this.#open.sse;
  }

  /** Waiting blocking queries. */
  get blocking(): number {
    return this.#open.blocking;
  }

  /** SSE streams closed because their client stopped reading. */
  get sseSlowClosed(): number {
    return this.#slowClosed;
  }

  /** Admits one more client of `kind`: its release (call it once it ended; a second call does
   * nothing), or undefined when `max` are already open. */
  admit(kind: WatcherKind): (() => void) | undefined {
    if (this.sse + this.blocking >= this.max) return undefined;
    this.#open[kind]++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#open[kind]--;
      if (this.sse + this.blocking > 0) return;
      for (const resolve of this.#idle.splice(0)) resolve();
    };
  }

  /** Counts an SSE stream closed because its client stopped reading. */
  slowClosed(): void {
    this.#slowClosed++;
  }

  /** Resolves once no stream or query is open (at once if none is). */
  idle(): Promise<void> {
    if (this.sse + this.blocking === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** At shutdown, after the drain signal: resolves once no stream or query is open (or after
   * DRAIN_MAX_MS), and their last answers had time to be written. */
  async drained(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.idle(),
      new Promise((r) => timer = setTimeout(r, DRAIN_MAX_MS)),
    ]).finally(() => clearTimeout(timer));
    await new Promise((r) => setTimeout(r, DRAIN_FLUSH_MS));
  }

  /** The counts, for a log line or a probe's report. */
  toJSON(): { sse: number; blocking: number; sseSlowClosed: number } {
    return { sse: this.sse, blocking: this.blocking, sseSlowClosed: this.sseSlowClosed };
  }
}
