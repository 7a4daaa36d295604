/**
 * The count of open SSE streams and blocking queries (what `--max-watchers` bounds and
 * `kpd_open_watchers` shows), with a promise for the moment none is open: the drain at shutdown
 * waits on it instead of polling the counts.
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

/** Open SSE streams and blocking queries, and SSE streams closed for not reading. */
export class OpenWatchers {
  /** Open SSE streams. */
  sse = 0;
  /** Waiting blocking queries. */
  blocking = 0;
  /** SSE streams closed because their client stopped reading. */
  sseSlowClosed = 0;
  #idle: (() => void)[] = [];

  /** Call after a stream or query ended (its count went down): wakes {@linkcode idle} waiters
   * once none is open. */
  closed(): void {
    if (this.sse + this.blocking > 0) return;
    for (const resolve of this.#idle.splice(0)) resolve();
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
}
