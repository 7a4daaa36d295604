/**
 * Reading one watch response: its newline-delimited JSON events, and a {@linkcode Watchdog} that
 * tells a quiet watch from a dead connection. Deno's `fetch` sends no HTTP/2 pings, so where
 * client-go's transport pings after 30 s without a frame (`ReadIdleTimeout`) and drops the
 * connection when no answer comes in 15 s (`PingTimeout`), the watchdog sends a small request
 * on the same HTTP client after 30 s of silence and gives up on the connection when it gets no
 * answer in 15 s. Where every watch rides one HTTP/2 connection, the watchdog asks the
 * connection's shared liveness instead (lib/connection_liveness.ts: one probe per connection).
 * A watch that answers probes but stays silent past the idle timeout (longer than the API
 * server's bookmark period) is restarted quietly: that is no failure.
 *
 * @module
 */
import type { ConnectionLiveness } from "./connection_liveness.ts";
import type { WatchEvent } from "./store.ts";

/** Probe the connection after this long without a byte (client-go's HTTP/2 ReadIdleTimeout). */
export const PROBE_AFTER_MS = 30_000;
/** A probe unanswered this long means the connection is dead (client-go's HTTP/2 PingTimeout). */
export const PROBE_TIMEOUT_MS = 15_000;
/** Default of `--watch-idle-timeout`: a quiet watch whose connection answers is restarted after
 * this long. Past the API server's 60 s bookmark period, so a healthy watch never reaches it. */
export const WATCH_IDLE_TIMEOUT_MS = 90_000;

/** The watch sent nothing for the idle timeout although the connection answers: restart it. */
export class QuietWatch extends Error {
  override name = "QuietWatch";
}

/** The connection under the watch answers nothing, not even a probe. */
export class DeadConnection extends Error {
  override name = "DeadConnection";
}

/** Options for {@linkcode Watchdog}. */
export interface WatchdogOptions {
  /** Silence before a probe (ms). Default {@linkcode PROBE_AFTER_MS}. */
  probeAfterMs?: number;
  /** How long a probe may take (ms). Default {@linkcode PROBE_TIMEOUT_MS}. */
  probeTimeoutMs?: number;
  /** Silence after which a watch whose connection answers is restarted (ms). */
  idleTimeoutMs: number;
  /** Sends the probe; resolves on any answer, rejects when there is none. */
  probe: (signal: AbortSignal) => Promise<void>;
  /** A probe was answered: the connection is alive, the watch only quiet. */
  onAlive?: () => void;
  /** The connection's shared liveness: where it is multiplexed, this watch sends no probe of its
   * own and relies on the connection's (which resets the connection when it fails). */
  connection?: ConnectionLiveness;
}

/** Watches one watch request for silence; aborts `controller` with a {@linkcode QuietWatch} or
 * {@linkcode DeadConnection} as its reason. */
export class Watchdog {
  #ac: AbortController;
  #o:
    & Required<Omit<WatchdogOptions, "onAlive" | "connection">>
    & Pick<WatchdogOptions, "onAlive" | "connection">;
  #timer?: ReturnType<typeof setTimeout>;
  /** On the monotonic clock: a step of the wall clock must neither restart a healthy watch nor
   * put off the probe of a dead one. */
  #lastByteAt = performance.now();
  #stopped = false;

  /** A watchdog that aborts `controller`; call {@linkcode Watchdog.touch} on every byte. */
  constructor(controller: AbortController, options: WatchdogOptions) {
    this.#ac = controller;
    this.#o = { probeAfterMs: PROBE_AFTER_MS, probeTimeoutMs: PROBE_TIMEOUT_MS, ...options };
    this.#arm(this.#o.probeAfterMs);
  }

  /** Something arrived on the watch. Only the time is noted: the one timer, when it fires,
   * waits out the rest of the silence from there (no timer is re-armed per chunk). */
  touch(): void {
    this.#lastByteAt = performance.now();
    this.#o.connection?.heard();
  }

  /** Stops watching (the watch ended). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** The one timer: the next check in `ms`. */
  #arm(ms: number): void {
    this.#timer = setTimeout(() => this.#check(), ms);
  }

  async #check(): Promise<void> {
    const silentMs = Math.round(performance.now() - this.#lastByteAt);
    if (silentMs < this.#o.probeAfterMs) return this.#arm(this.#o.probeAfterMs - silentMs);
    if (silentMs >= this.#o.idleTimeoutMs) {
      return this.#ac.abort(new QuietWatch(`watch sent nothing for ${silentMs} ms; restarting it`));
    }
    if (this.#o.connection?.multiplexed) return this.#checkShared(this.#o.connection, silentMs);
    const signal = AbortSignal.any([this.#ac.signal, AbortSignal.timeout(this.#o.probeTimeoutMs)]);
    try {
      await this.#o.probe(signal);
    } catch (e) {
      if (this.#stopped || this.#ac.signal.aborted) return;
      return this.#ac.abort(
        new DeadConnection(
          `connection dead: watch silent for ${silentMs} ms and a probe got no answer in ` +
            `${this.#o.probeTimeoutMs} ms (${(e as Error)?.message ?? e})`,
        ),
      );
    }
    if (this.#stopped) return;
    this.#o.onAlive?.();
    // Probe again after another quiet spell; the idle check counts from the last byte.
    this.#arm(Math.min(this.#o.probeAfterMs, Math.max(0, this.#o.idleTimeoutMs - silentMs)) || 1);
  }

  /** The check where every watch rides one connection: any byte on it within the probe delay
   * vouches for this watch too; else the one shared probe does. Its failure resets the
   * connection, which moves this watch (lib/shared_connection.ts): nothing to abort here. */
  async #checkShared(live: ConnectionLiveness, silentMs: number): Promise<void> {
    const quietMs = live.silentMs();
    const untilIdle = Math.max(0, this.#o.idleTimeoutMs - silentMs);
    if (quietMs < this.#o.probeAfterMs) {
      this.#o.onAlive?.();
      return this.#arm(Math.min(this.#o.probeAfterMs - quietMs, untilIdle) || 1);
    }
    try {
      await live.check();
    } catch {
      return;
    }
    if (this.#stopped) return;
    this.#o.onAlive?.();
    this.#arm(Math.min(this.#o.probeAfterMs, untilIdle) || 1);
  }
}

/** Options of {@linkcode watchEvents}. */
export interface WatchEventsOptions {
  /** Called on every chunk of bytes (the watchdog's touch). */
  onBytes?: () => void;
  /** Ends the events at once, throwing its reason. */
  signal?: AbortSignal;
}

/**
 * The events of a watch response body, one per JSON line. An abort of `signal` cancels the body
 * itself and ends the events at once: Deno's fetch, aborted while a read of a watch body is
 * pending, did not always end that read (a worker of 250 reflectors kept 38 of them reading
 * after its abort, for good), so the reflector would never stop.
 */
export async function* watchEvents(
  body: ReadableStream<Uint8Array>,
  options: WatchEventsOptions = {},
): AsyncGenerator<WatchEvent> {
  const { onBytes, signal } = options;
  const reader = body.getReader();
  const onAbort = () => void reader.cancel(signal?.reason).catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  const decoder = new TextDecoder();
  let finished = false;
  try {
    let buf = "";
    while (true) {
      const { value, done } = await reader.read();
      if (signal?.aborted) throw signal.reason;
      if (done) break;
      onBytes?.();
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) yield JSON.parse(line) as WatchEvent;
      }
    }
    finished = true;
    buf += decoder.decode();
    if (buf.trim()) yield JSON.parse(buf) as WatchEvent;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // Left early (a bad event, a stop): let the connection go.
    if (!finished) void reader.cancel().catch(() => {});
  }
}
