/**
 * Whether the one HTTP/2 connection under every watch is alive, checked once for all of them.
 * client-go pings each HTTP/2 connection after 30 s without a frame (`ReadIdleTimeout`) and drops
 * it when no answer comes in 15 s (`PingTimeout`); Deno's `fetch` sends no pings, so a probe
 * request stands in for the ping. Where the watches share one connection, any byte on it (any
 * watch's event or bookmark, any response) proves it alive as well as a probe would; so a probe
 * is sent only when the whole connection has been silent that long, at most one at a time, and
 * its answer serves every watch. Each HTTP client (each reset) gets its own, so a probe on the
 * new client never vouches for the old one. Not covered, since `fetch` cannot pick a connection:
 * after an HTTP/2 GOAWAY, watches left on the old connection are vouched for by bytes on the new
 * one, so a dead flow of theirs alone is found by the watch idle timeout (README).
 *
 * @module
 */

/** Options for {@linkcode ConnectionLiveness}. */
export interface ConnectionLivenessOptions {
  /** Silence of the whole connection before a probe (ms). */
  probeAfterMs: number;
  /** How long the probe may take (ms). */
  probeTimeoutMs: number;
  /** Sends the probe on this connection; resolves on any answer. */
  probe: (signal: AbortSignal) => Promise<void>;
  /** The probe got no answer: the connection is dead. Called once. */
  onDead: (reason: string) => void;
  /** Whether every request rides this one connection (HTTP/2); read at each check. */
  multiplexed: () => boolean;
}

/** The liveness of one HTTP client's connection, shared by the watches on it. */
export class ConnectionLiveness {
  #o: ConnectionLivenessOptions;
  #lastHeardAt = performance.now();
  #inFlight?: Promise<void>;
  #closed = new AbortController();
  #dead = false;

  /** The liveness of a connection just made (a fresh connection counts as just heard). */
  constructor(options: ConnectionLivenessOptions) {
    this.#o = options;
  }

  /** Whether the watches may rely on this check rather than probe each on its own. */
  get multiplexed(): boolean {
    return this.#o.multiplexed();
  }

  /** Bytes arrived on the connection: a response, an event, a bookmark. */
  heard(): void {
    this.#lastHeardAt = performance.now();
  }

  /** Milliseconds since the connection last sent anything. */
  silentMs(): number {
    return performance.now() - this.#lastHeardAt;
  }

  /** Resolves once the connection is known alive: at once when heard within the probe delay,
   * else with the answer of the one probe in flight (sent now if none is). Rejects when that
   * probe gets no answer (the connection is then reported dead, once) or this client is closed. */
  check(): Promise<void> {
    if (this.#dead) return Promise.reject(new Error("connection found dead"));
    if (this.silentMs() < this.#o.probeAfterMs) return Promise.resolve();
    return this.#inFlight ??= this.#probe().finally(() => this.#inFlight = undefined);
  }

  /** This client was replaced or closed: a probe in flight is abandoned, and reports nothing. */
  close(): void {
    this.#closed.abort(new Error("connection closed"));
  }

  async #probe(): Promise<void> {
    const silentMs = Math.round(this.silentMs());
    const timeout = new AbortController();
    // A timer of its own (not AbortSignal.timeout) so that tests can drive it.
    const timer = setTimeout(
      () => timeout.abort(new Error(`no answer in ${this.#o.probeTimeoutMs} ms`)),
      this.#o.probeTimeoutMs,
    );
    try {
      await this.#o.probe(AbortSignal.any([this.#closed.signal, timeout.signal]));
      this.heard();
    } catch (e) {
      if (this.#closed.signal.aborted) throw e;
      if (!this.#dead) {
        this.#dead = true;
        this.#o.onDead(
          `connection dead: nothing on it for ${silentMs} ms and a probe got no answer in ` +
            `${this.#o.probeTimeoutMs} ms (${(e as Error)?.message ?? e})`,
        );
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
}
