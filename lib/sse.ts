/**
 * Server-Sent Events over the cache's changes, with real backpressure. A stream opens with
 * `retry:` and, before the first complete list, a comment; then `event: snapshot` per selected
 * Service, then `event: update` / `event: removed` per change (`id` = the change index).
 * `Last-Event-ID` resumes with what changed at or after it, or, when this process cannot replay
 * that far, `event: reset` and a snapshot. The stream holds at most one pending state per
 * Service (the cache listener only replaces it) and hands the HTTP layer bytes only when it asks
 * for more (a pull-based body whose queue holds at most one chunk, paced), so a slow
 * consumer costs references to shared, serialized-once frames, not copies. A stream that holds
 * more than `maxUnsentBytes` for `stallMs` is closed; its client resumes with `Last-Event-ID`.
 * See docs/api.md.
 *
 * @module
 */
import type { ViewSource } from "./cache.ts";
import type { ServiceView } from "./service_view.ts";
import { sseEvent } from "./sse_frame.ts";
import type { SseHistory } from "./sse_history.ts";

/** Comment line sent when nothing else was, so proxies keep an idle stream open. */
export const HEARTBEAT_MS = 15_000;

/**
 * Reconnection delay sent as `retry:`. A restarted sidecar listens again within about a second,
 * and a refused connection on localhost costs nothing, so a client is back one second after the
 * process is; the spec leaves the default to the client (3 s in most), which only delays it.
 */
export const RETRY_MS = 1_000;

/**
 * Unsent bytes (pending states plus bytes handed to the HTTP layer it has not written yet) one
 * stream may hold. Coalescing keeps a one-Service stream under one state, so only an all-Services
 * stream whose consumer stopped reading gets here: four whole states of a 1,000-endpoint Service.
 */
export const MAX_UNSENT_BYTES = 1024 * 1024;

/**
 * How long a stream may stay over {@linkcode MAX_UNSENT_BYTES} before it is closed. A consumer
 * that reads at all drains a megabyte from localhost in milliseconds; ten seconds is far beyond a
 * GC pause or a busy node, and short enough to free the slot of one that stopped.
 */
export const STALL_MS = 10_000;

/**
 * Least time between two hand-overs of events to the HTTP layer, per stream, one-Service or
 * all-Services. Deno pulls again as soon as its channel has room, not when the socket took the
 * bytes, so a stream whose socket is full still gets every change handed over, and each write
 * costs native memory the allocator keeps (measured: 1,000 streams from 4 KiB receive windows,
 * 150 changes in a burst, +103 MB VmRSS one-Service, over the bound all-Services; see
 * docs/api.md). Spacing hand-overs lets changes in a burst coalesce into the one pending state
 * per Service, at the price of a reader seeing a burst's end up to this late. A hand-over gives
 * everything pending, {@linkcode CHUNK_BYTES} per pull.
 */
export const PACE_MS = 100;

/**
 * Bytes given to the HTTP layer per pull at most. What Deno has not taken stays in the body's
 * queue as references to frames the cache may move past; a budget keeps what a stream that
 * stopped reading pins there to one chunk (plus one frame), and the rest of a hand-over follows
 * on the next pull without waiting for the pace. 64 KiB is Deno's own channel limit
 * (BUFFER_BACKPRESSURE_LIMIT in ext/web/stream_resource.rs).
 */
export const CHUNK_BYTES = 64 * 1024;

/** How long a stream may take to send its final state at shutdown before it is cut. */
export const DRAIN_MS = 2_000;

const encoder = new TextEncoder();
const HEARTBEAT = encoder.encode(": heartbeat\n\n");

/** The event types a view is sent as. */
export type EventType = "snapshot" | "update" | "removed";

/** Why a stream ended. */
export type CloseReason = "client" | "shutdown" | "slow";

/** Options for {@linkcode sseResponse}. */
export interface SseOptions {
  /** Replay horizon, tombstones and readiness of the cache. */
  history: SseHistory;
  /** The one Service the stream carries; undefined for every watched Service. */
  service?: { namespace: string; name: string };
  /** The whole event (`event:`, `id:` and `data:` lines) of a view, shared between streams. */
  frame: (view: ServiceView, type: EventType) => Uint8Array;
  /** Resume after this index (the client's Last-Event-ID). */
  lastEventId?: number;
  /** Called once when the stream ends, however it ends. */
  onClose?: (reason: CloseReason, detail: { unsentBytes: number }) => void;
  /** Ends the stream after its final state (the sidecar draining before shutdown). */
  signal?: AbortSignal;
  /** Heartbeat period. Default {@linkcode HEARTBEAT_MS}. */
  heartbeatMs?: number;
  /** Default {@linkcode MAX_UNSENT_BYTES}. */
  maxUnsentBytes?: number;
  /** Default {@linkcode STALL_MS}. */
  stallMs?: number;
  /** Default {@linkcode PACE_MS}. */
  paceMs?: number;
}

interface Pending {
  view: ServiceView;
  type: EventType;
  frame: Uint8Array;
}

/** A `text/event-stream` response over the cache's changes; always 200. */
export function sseResponse(cache: ViewSource, options: SseOptions): Response {
  const stream = new SseStream(cache, options);
  return new Response(stream.body, {
    headers: {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-cache",
      // Tells nginx-style proxies not to buffer the stream.
      "X-Accel-Buffering": "no",
    },
  });
}

class SseStream {
  readonly body: ReadableStream<Uint8Array>;
  #cache: ViewSource;
  #o: SseOptions;
  #pending = new Map<string, Pending>();
  #pendingBytes = 0;
  #inFlight = 0;
  #preamble: Uint8Array[] = [];
  #started = false;
  #wake?: () => void;
  #closed?: CloseReason;
  #draining = false;
  #overSince?: number;
  #handedAt = -Infinity;
  /** A hand-over is under way: pending states left by the last pull's budget go on at once. */
  #continuing = false;
  #stallTimer?: ReturnType<typeof setTimeout>;
  #drainTimer?: ReturnType<typeof setTimeout>;
  #controller?: ReadableStreamDefaultController<Uint8Array>;
  #unsubscribe = () => {};
  #onDrain = () => this.#drain();

  constructor(cache: ViewSource, options: SseOptions) {
    this.#cache = cache;
    this.#o = options;
    const waiting = !this.#scopeSynced();
    this.#preamble.push(
      encoder.encode(
        `retry: ${RETRY_MS}\n${waiting ? ": waiting for the first complete list\n" : ""}\n`,
      ),
    );
    this.body = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.#controller = c;
      },
      pull: (c) => this.#pull(c),
      cancel: () => this.#close("client"),
    }, { highWaterMark: 0 });
    // Both removed again when the stream closes: the drain signal and the cache live as long as
    // the process, and a listener left on them would keep every stream that ever opened.
    options.signal?.addEventListener("abort", this.#onDrain, { once: true });
    if (!waiting) {
      this.#start();
    } else {
      this.#unsubscribe = cache.onSynced(() => {
        if (!this.#scopeSynced()) return;
        this.#unsubscribe();
        this.#start();
      });
    }
    // A client that reconnects while the sidecar drains is ended like the others, at once.
    if (options.signal?.aborted) this.#drain();
  }

  /** Whether what the stream carries is listed: its Service's namespace, or every namespace.
   * A stream of one namespace does not wait for another (one without a Role, say). */
  #scopeSynced(): boolean {
    const s = this.#o.service;
    return s ? this.#cache.synced(s.namespace) : this.#cache.ready;
  }

  #select(v: ServiceView): boolean {
    const s = this.#o.service;
    return s === undefined || (v.namespace === s.namespace && v.name === s.name);
  }

  /** Fills the first states once the cache is ready, and follows its changes. */
  #start(): void {
    if (this.#closed) return;
    const { history, lastEventId: last, service } = this.#o;
    const current = service
      ? [this.#cache.view(service.namespace, service.name)].filter((v) => v !== undefined)
      : this.#cache.views();
    if (last !== undefined && history.canReplay(last)) {
      for (const v of current) if (v.index >= last) this.#put(v, "update");
      for (const v of history.removedSince(last)) if (this.#select(v)) this.#put(v, "removed");
    } else {
      if (last !== undefined) {
        const reason = last > this.#cache.index
          ? "Last-Event-ID is newer than any change this sidecar knows"
          : "Last-Event-ID is older than this sidecar's history";
        this.#preamble.push(encoder.encode(sseEvent({
          event: "reset",
          data: JSON.stringify({ index: this.#cache.index, reason }),
        })));
      }
      for (const v of current) this.#put(v, "snapshot");
    }
    this.#started = true;
    this.#unsubscribe = this.#cache.subscribe((changed) => {
      for (const v of changed) if (this.#select(v)) this.#put(v, v.removed ? "removed" : "update");
      this.#checkBound();
      if (this.#pending.size) this.#wake?.();
    });
    this.#wake?.();
  }

  /** Keeps the latest state of a Service: replaces, never queues. */
  #put(view: ServiceView, type: EventType): void {
    const key = `${view.namespace}/${view.name}`;
    const before = this.#pending.get(key);
    if (before) {
      this.#pendingBytes -= before.frame.byteLength;
      // A Service the client has not had a snapshot of yet still gets one.
      if (before.type === "snapshot" && type === "update") type = "snapshot";
    }
    const frame = this.#o.frame(view, type);
    this.#pending.set(key, { view, type, frame });
    this.#pendingBytes += frame.byteLength;
  }

  get #unsent(): number {
    return this.#pendingBytes + this.#inFlight;
  }

  /** Starts or clears the stall clock; closes a stream over its bound for too long. */
  #checkBound(): void {
    const max = this.#o.maxUnsentBytes ?? MAX_UNSENT_BYTES;
    if (this.#unsent <= max) {
      this.#overSince = undefined;
      clearTimeout(this.#stallTimer);
      this.#stallTimer = undefined;
      return;
    }
    if (this.#overSince !== undefined) return;
    this.#overSince = performance.now();
    this.#stallTimer = setTimeout(() => {
      if (this.#overSince !== undefined) this.#abort("slow");
    }, this.#o.stallMs ?? STALL_MS);
  }

  async #pull(c: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    // Deno asks again once what it took last time moved on towards the socket: a stream whose
    // hand-over was over the bound is under it again, before it waits for anything.
    this.#inFlight = 0;
    this.#checkBound();
    if (!this.#preamble.length && !this.#hasEvents() && !this.#closed && !this.#draining) {
      await this.#sleep(this.#o.heartbeatMs ?? HEARTBEAT_MS);
    }
    // A change that comes within the pace of the last hand-over waits, and coalesces with others.
    while (this.#hasEvents() && !this.#continuing && !this.#closed && !this.#draining) {
      const wait = this.#handedAt + (this.#o.paceMs ?? PACE_MS) - performance.now();
      if (wait <= 0) break;
      await this.#sleep(wait);
    }
    if (this.#closed) return;
    const preamble = this.#preamble.splice(0);
    let budget = CHUNK_BYTES;
    for (const p of preamble) {
      c.enqueue(p);
      budget -= p.byteLength;
    }
    const handing = this.#hasEvents();
    if (handing) {
      if (!this.#continuing) this.#handedAt = performance.now();
      for (const p of [...this.#pending.values()].sort((a, b) => a.view.index - b.view.index)) {
        if (budget <= 0) break;
        this.#pending.delete(`${p.view.namespace}/${p.view.name}`);
        this.#pendingBytes -= p.frame.byteLength;
        c.enqueue(p.frame);
        this.#inFlight += p.frame.byteLength;
        budget -= p.frame.byteLength;
      }
      this.#continuing = this.#hasEvents();
    } else if (!preamble.length && !this.#draining) {
      c.enqueue(HEARTBEAT);
    }
    this.#checkBound();
    // Ends on the pull after the last hand-over: Deno has taken it all, and until then the drain
    // timer still cuts a client that stopped reading.
    if (this.#draining && !handing && !preamble.length) this.#end(c, "shutdown");
  }

  #hasEvents(): boolean {
    return this.#started && this.#pending.size > 0;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(t);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  /** Shutdown: send what is pending, then end; cut the stream if its client does not read. */
  #drain(): void {
    if (this.#closed) return;
    this.#draining = true;
    // Never synced: nothing to send but the opening lines; the next process will.
    if (!this.#started) this.#unsubscribe();
    this.#wake?.();
    this.#drainTimer = setTimeout(() => this.#abort("shutdown"), DRAIN_MS);
  }

  #end(c: ReadableStreamDefaultController<Uint8Array>, reason: CloseReason): void {
    if (this.#closed) return;
    this.#close(reason);
    try {
      c.close();
    } catch {
      // Already closed or errored.
    }
  }

  /** Ends the stream at once, whatever is unsent. */
  #abort(reason: CloseReason): void {
    if (this.#closed) return;
    this.#close(reason);
    try {
      this.#controller?.error(new Error(`SSE stream closed: ${reason}`));
    } catch {
      // Already closed.
    }
  }

  #close(reason: CloseReason): void {
    if (this.#closed) return;
    const unsentBytes = this.#unsent;
    this.#closed = reason;
    this.#unsubscribe();
    this.#o.signal?.removeEventListener("abort", this.#onDrain);
    clearTimeout(this.#stallTimer);
    clearTimeout(this.#drainTimer);
    this.#pending.clear();
    this.#pendingBytes = 0;
    this.#wake?.();
    this.#o.onClose?.(reason, { unsentBytes });
  }
}
