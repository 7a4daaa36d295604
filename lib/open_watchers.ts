/**
 * The count of open SSE streams and blocking queries (what `--max-watchers` bounds and
 * `kpd_open_watchers` shows), with a promise for the moment none is open: the drain at shutdown
 * waits on it instead of polling the counts.
 *
 * @module
 */

/** Default of `--max-watchers`: open SSE streams and blocking queries at once. A Pod has a few
 * clients; the limit bounds a runaway one. */
export const DEFAULT_MAX_WATCHERS = 1000;

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
}
