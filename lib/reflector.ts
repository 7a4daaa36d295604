/**
 * The list/watch loop for one resource in one namespace (EndpointSlices, or Services in
 * selector mode), after client-go's `tools/cache/reflector.go`. A round lists (a streaming list
 * where the API server offers it, else a paginated list) and then watches from the last synced
 * resourceVersion, which advances on every event and bookmark and survives a failed watch, so
 * the next watch resumes where the last one really ended. A 410 relists from that
 * resourceVersion, and from the newest state when that is expired or too large. Failed rounds
 * wait as {@linkcode Backoff} says; the loop never gives up while the process runs.
 *
 * @module
 */
import {
  ApiError,
  apiError,
  explain,
  isConnectionRefused,
  isExpired,
  isForbidden,
  isStreamingListRefused,
  isTooLargeResourceVersion,
  isTooManyRequests,
  isUnauthorized,
  statusError,
} from "./api_error.ts";
import { Backoff, type Wait } from "./backoff.ts";
import type { ConnectionLiveness } from "./connection_liveness.ts";
import { listAll, type ListResult } from "./list_pager.ts";
import type { KubeConnection } from "./kube_connection.ts";
import { WatchHealth } from "./health.ts";
import type { Logger } from "./log.ts";
import type { KubeItem, ReflectorStore, WatchEvent } from "./store.ts";
import {
  PROBE_AFTER_MS,
  PROBE_TIMEOUT_MS,
  QuietWatch,
  WATCH_IDLE_TIMEOUT_MS,
  Watchdog,
  watchEvents,
} from "./watch_stream.ts";

/** Watch timeouts are random in this range (s), to spread relists on the API server
 * (client-go's `defaultMinWatchTimeout`, 5 to 10 minutes). */
export const WATCH_TIMEOUT_RANGE_S = [300, 600] as const;
/** A list that takes longer than this is abandoned and retried (a black-holed connection). */
export const LIST_TIMEOUT_MS = 60_000;
/** A watch that ends this fast with no event counts as a failure, so it is backed off. */
const SHORT_WATCH_MS = 1_000;
/** How long the `/readyz` check after a 403 may take. */
const READYZ_TIMEOUT_MS = 5_000;
/** The annotation of the bookmark that ends a streaming list's initial events. */
const INITIAL_EVENTS_END = "k8s.io/initial-events-end";
/**
 * How long a streaming list may send nothing, once answered, before its initial-events-end
 * bookmark (the wait for the answer is not counted: see `#watch`). A server
 * that honours `sendInitialEvents` streams the state back to back and then the bookmark; one
 * that ignores it (a proxy, an aggregated server) sends a plain watch, and the namespace would
 * stay unsynced until the watch's 5–10 min timeout, again and again. client-go warns at this
 * point (`newInitialEventsEndBookmarkTicker`, a 10 s tick, in tools/cache/reflector.go) and waits
 * on until the watch ends, then streams again; here the reflector warns once and lists in pages
 * from then on, since making progress beats waiting for a bookmark that never comes.
 */
export const INITIAL_EVENTS_QUIET_MS = 10_000;

/** The shared connection this watch ran on was reset: another watch found it dead, or its
 * shared probe got no answer (`dead` then says why). */
class ConnectionReplaced extends Error {
  override name = "ConnectionReplaced";
  readonly dead?: string;
  constructor(dead?: string) {
    super(dead ?? "another watch found the shared connection dead and replaced it");
    this.dead = dead;
  }
}

/** A streaming list sent no initial-events-end bookmark: the server does not honour it. */
class NoInitialEventsEnd extends Error {
  override name = "NoInitialEventsEnd";
}

/** Counters of one reflector, read by metrics and tests. */
export interface ReflectorStats {
  lists: number;
  watches: number;
  expired: number;
  events: number;
  backoffMs: number;
  /** When the last event or bookmark arrived, ms since the epoch. */
  lastEventAt?: number;
  lastError?: string;
}

/** Options for {@linkcode Reflector}. */
export interface ReflectorOptions {
  /** Namespace whose objects are watched. */
  namespace: string;
  /** Collection path below the namespace. Default: EndpointSlices (discovery.k8s.io/v1). */
  resource?: { group: string; version: string; plural: string };
  /** Label selector, e.g. `kubernetes.io/service-name in (a,b)`. */
  labelSelector?: string;
  /** The API server; with `onReset` (lib/shared_connection.ts) where several reflectors share
   * it, so that a watch leaves a client another watch found dead, and `liveness`, so that the
   * watches on one HTTP/2 connection share its idle probe. */
  connection: KubeConnection & {
    onReset?: (listener: (reason?: string) => void) => () => void;
    liveness?: () => ConnectionLiveness;
  };
  log: Logger;
  /** Restart a watch that sent nothing this long although its connection answers (ms).
   * Default {@linkcode WATCH_IDLE_TIMEOUT_MS} (bookmarks come every 60 s). */
  idleTimeoutMs?: number;
  /** Silence before the connection is probed (ms). Default {@linkcode PROBE_AFTER_MS}. */
  probeAfterMs?: number;
  /** How long a probe may take (ms). Default {@linkcode PROBE_TIMEOUT_MS}. */
  probeTimeoutMs?: number;
  /** Try a streaming list first. Default true; it falls back by itself where not offered. */
  streamingList?: boolean;
  /** Silence before a streaming list without its end bookmark is given up (ms). Default
   * {@linkcode INITIAL_EVENTS_QUIET_MS}. */
  initialEventsQuietMs?: number;
  /** How long a paginated list may take before it is abandoned (ms). Default
   * {@linkcode LIST_TIMEOUT_MS}. */
  listTimeoutMs?: number;
  /** Sleep; replaced in tests to drive time. Default: a timer that stops on abort. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Random in [0, 1). Default Math.random. */
  random?: () => number;
  /** Monotonic clock (ms) for the backoff reset. Default performance.now. */
  now?: () => number;
}

type Options = Required<Omit<ReflectorOptions, "labelSelector" | "resource">> & {
  labelSelector?: string;
};

/** The list/watch loop of one resource in one namespace feeding a {@linkcode ReflectorStore}. */
export class Reflector {
  /** Counters, for metrics. */
  readonly stats: ReflectorStats = { lists: 0, watches: 0, expired: 0, events: 0, backoffMs: 0 };
  /** Metric labels: namespace and resource. */
  readonly labels: Record<string, string>;
  /** Whether this watch is healthy, since when it is broken and why. */
  readonly health: WatchHealth;
  #store: ReflectorStore;
  #o: Options;
  #base: string;
  #kind: string;
  #backoff: Backoff;
  /** client-go `lastSyncResourceVersion`: of the last list, event or bookmark applied. */
  #lastSyncRV = "";
  /** client-go `isLastSyncResourceVersionUnavailable`: it was expired or too large. */
  #rvUnavailable = false;
  #needList = true;
  #streaming: boolean;
  #lastWaitReason?: string;
  /** Events and bookmarks received, to tell a watch that ended at once with nothing. */
  #received = 0;
  /** Whether the current watch got its response headers (it was established). */
  #watchOpened = false;

  /** A reflector for `options.namespace` writing into `store`. */
  constructor(store: ReflectorStore, options: ReflectorOptions) {
    this.#store = store;
    this.#o = {
      idleTimeoutMs: WATCH_IDLE_TIMEOUT_MS,
      probeAfterMs: PROBE_AFTER_MS,
      probeTimeoutMs: PROBE_TIMEOUT_MS,
      streamingList: true,
      initialEventsQuietMs: INITIAL_EVENTS_QUIET_MS,
      listTimeoutMs: LIST_TIMEOUT_MS,
      sleep: abortableSleep,
      random: Math.random,
      now: () => performance.now(),
      ...options,
    };
    this.#streaming = this.#o.streamingList;
    this.#backoff = new Backoff({ random: this.#o.random, now: this.#o.now });
    const r = options.resource ??
      { group: "discovery.k8s.io", version: "v1", plural: "endpointslices" };
    const prefix = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
    this.#base = `${prefix}/namespaces/${encodeURIComponent(options.namespace)}/${r.plural}`;
    this.#kind = r.group ? `${r.plural}.${r.group}` : r.plural;
    this.labels = { namespace: options.namespace, resource: this.#kind };
    this.health = new WatchHealth(this.labels as { namespace: string; resource: string });
  }

  /** The resourceVersion the next watch resumes from (client-go `LastSyncResourceVersion`). */
  get lastSyncResourceVersion(): string {
    return this.#lastSyncRV;
  }

  /** Runs until `signal` aborts: rounds of list and watch, each failure followed by a wait
   * (client-go `RunWithContext` with its backoff manager around `ListAndWatchWithContext`). */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.#round(signal);
      } catch (e) {
        if (signal.aborted) break;
        await this.#fail(e, signal);
      }
    }
  }

  /** One list-and-watch round; returns only by throwing (or on abort). A streaming list is a
   * watch that starts with every object; where it is refused, a paginated list comes first. */
  async #round(signal: AbortSignal): Promise<void> {
    let streamingList = this.#needList && this.#streaming;
    if (this.#needList && !streamingList) await this.#list(signal);
    while (!signal.aborted) {
      const started = performance.now();
      const before = this.#received;
      let ended: "ended" | "quiet";
      try {
        ended = await this.#watch(signal, streamingList);
      } catch (e) {
        // Stopping is no failure: let run() end.
        if (signal.aborted) throw e;
        if (e instanceof ConnectionReplaced) {
          this.#moved(e);
          streamingList = this.#streaming;
          if (streamingList) this.#needList = true;
          continue;
        }
        // Past its initial events a streaming list is a plain watch.
        if (!streamingList || !this.#needList) {
          if (!this.#brokeMidStream(e, started, before)) throw e;
          this.#resume(e);
          // Resume with a streaming list from the last synced resourceVersion where the server
          // offers it: the state not older than it, then the end bookmark, so the watch is known
          // current again at once rather than at the next bookmark (up to a minute on a quiet
          // namespace; `lastUpdated` would stay frozen that long). Applied as a whole state, it
          // replays nothing. client-go relists after a broken watch too.
          streamingList = this.#streaming;
          if (streamingList) this.#needList = true;
          continue;
        }
        if (e instanceof NoInitialEventsEnd) {
          this.#streaming = streamingList = false;
          this.#o.log.log("warn", "streaming list never ended; listing in pages", {
            namespace: this.#o.namespace,
            resource: this.#kind,
            reason: e.message,
          });
          await this.#list(signal);
          continue;
        }
        if (isStreamingListRefused(e)) {
          this.#streaming = streamingList = false;
          this.#o.log.log("info", "streaming list not offered; listing in pages", {
            namespace: this.#o.namespace,
            resource: this.#kind,
            reason: (e as Error).message,
          });
          await this.#list(signal);
          continue;
        }
        // client-go `watchList`: an expired or too large resourceVersion streams the newest
        // state ("") at once.
        if ((isExpired(e) || isTooLargeResourceVersion(e)) && !this.#rvUnavailable) {
          this.#rvUnavailable = true;
          continue;
        }
        throw e;
      }
      streamingList = false;
      if (ended === "quiet") continue;
      if (performance.now() - started < SHORT_WATCH_MS && this.#received === before) {
        throw new Error("watch closed at once with no event");
      }
      this.stats.backoffMs = 0;
    }
  }

  /** Whether a watch failed after it was established and had lasted: its connection broke
   * (a cut, a restart, a dead connection), not the request. client-go's `handleWatch` ends such a
   * watch without an error and its `watch` loop opens the next one at once; only a watch that
   * ends within a second with nothing ("very short watch") is an error that is backed off. */
  #brokeMidStream(e: unknown, started: number, before: number): boolean {
    if (e instanceof ApiError || !this.#watchOpened) return false;
    return this.#received > before || performance.now() - started >= SHORT_WATCH_MS;
  }

  /** After a watch broke mid-stream: broken until the next event, a fresh connection, and the
   * next watch at once from the last synced resourceVersion. */
  #resume(e: unknown): void {
    const message = explain(e, this.#o.namespace, this.#kind);
    this.stats.lastError = message;
    this.health.broken(message);
    this.#o.connection.reset();
    this.#o.log.log("warn", "watch broken; resuming", {
      namespace: this.#o.namespace,
      resource: this.#kind,
      reason: message,
      resourceVersion: this.#lastSyncRV,
    });
  }

  /** After another watch replaced the shared connection: this watch ran on the client found
   * dead, so it is broken until it hears from the server on the new one. No reset of its own (that
   * would move every other watch in turn) and no wait. */
  #moved(e: ConnectionReplaced): void {
    this.health.broken(e.message);
    this.stats.lastError = e.message;
    // The shared probe found the connection dead (and reset it): each watch on it was broken,
    // and says so as one that found it dead itself (`#resume`) does.
    const msg = e.dead ? "watch broken; resuming" : "watch moved to a new connection";
    this.#o.log.log(e.dead ? "warn" : "info", msg, {
      namespace: this.#o.namespace,
      resource: this.#kind,
      reason: e.message,
      resourceVersion: this.#lastSyncRV,
    });
  }

  async #fail(e: unknown, signal: AbortSignal): Promise<void> {
    // Deno's fetch says only "fetch failed": the health line (/readyz) and stats name the cause.
    const message = explain(e, this.#o.namespace, this.#kind);
    this.stats.lastError = message;
    this.health.broken(message);
    if (isExpired(e)) {
      // client-go: relist from the last synced resourceVersion ("not older than"), not from
      // 0, which a lagging API server's watch cache may answer with an older state.
      this.stats.expired++;
      this.#needList = true;
    }
    // A watch from a resourceVersion this API server has not seen yet (we talked to a newer
    // one) never succeeds: relist, which falls back to the newest state.
    if (isTooLargeResourceVersion(e)) this.#needList = true;
    if (isUnauthorized(e)) this.#o.connection.unauthorized();
    // Not an answer of the API server: the connection itself failed or went silent.
    if (!(e instanceof ApiError)) this.#o.connection.reset();
    const [wait, level, reason] = await this.#classify(e, signal);
    const delay = this.#backoff.delay(wait);
    this.stats.backoffMs = Math.round(delay);
    // A long outage repeats one reason every second: say it once, then at debug level.
    // The key leaves out the URL (its timeoutSeconds is random) and the message details.
    const key = wait.kind === "quick" ? reason.slice(0, reason.indexOf(":")) : undefined;
    const repeated = key !== undefined && key === this.#lastWaitReason;
    this.#lastWaitReason = key;
    this.#o.log.log(repeated ? "debug" : level, isExpired(e) ? "relisting" : "backing off", {
      namespace: this.#o.namespace,
      resource: this.#kind,
      reason,
      resourceVersion: this.#lastSyncRV,
      delayMs: Math.round(delay),
    });
    await this.#o.sleep(delay, signal);
  }

  /** What wait a failure calls for, at what log level, and the line that explains it. */
  async #classify(e: unknown, signal: AbortSignal): Promise<[Wait, "warn" | "error", string]> {
    const ns = this.#o.namespace;
    if (isConnectionRefused(e)) {
      return [{ kind: "quick" }, "warn", `API server unreachable: ${explain(e, ns, this.#kind)}`];
    }
    if (isTooManyRequests(e) && (e as { retryAfterMs?: number }).retryAfterMs !== undefined) {
      const ms = (e as { retryAfterMs: number }).retryAfterMs;
      return [{ kind: "told", ms }, "warn", `too many requests (429), retry after ${ms} ms`];
    }
    if (isForbidden(e) && !(await this.#serverReady(signal))) {
      // While it starts, an API server denies everything until its RBAC policy is loaded.
      return [
        { kind: "quick" },
        "warn",
        `API server not ready yet (its /readyz is not 200); transient: ${(e as Error).message}`,
      ];
    }
    if (isExpired(e)) {
      return [
        { kind: "backoff" },
        "warn",
        `resourceVersion ${this.#lastSyncRV} expired (410 Gone): ${(e as Error).message}`,
      ];
    }
    return [{ kind: "backoff" }, isForbidden(e) ? "error" : "warn", explain(e, ns, this.#kind)];
  }

  async #serverReady(signal: AbortSignal): Promise<boolean> {
    try {
      const resp = await this.#o.connection.fetch("/readyz", {
        signal: AbortSignal.any([signal, AbortSignal.timeout(READYZ_TIMEOUT_MS)]),
      });
      await resp.body?.cancel();
      return resp.status === 200;
    } catch {
      return false;
    }
  }

  #query(extra: Record<string, string>): string {
    const q = new URLSearchParams(extra);
    if (this.#o.labelSelector) q.set("labelSelector", this.#o.labelSelector);
    return `${this.#base}?${q}`;
  }

  /** A paginated list (client-go `list` with `relistResourceVersion`): from 0 the first time
   * (the watch cache answers), then from the last synced resourceVersion, and from the newest
   * state ("") when that is expired or too large. */
  async #list(signal: AbortSignal): Promise<void> {
    const timeout = AbortSignal.any([signal, AbortSignal.timeout(this.#o.listTimeoutMs)]);
    const relistRV = this.#rvUnavailable ? "" : (this.#lastSyncRV || "0");
    let result: ListResult;
    try {
      result = await this.#listAt(relistRV, timeout);
    } catch (e) {
      if (!(isExpired(e) || isTooLargeResourceVersion(e)) || relistRV === "") throw e;
      this.#rvUnavailable = true;
      result = await this.#listAt("", timeout);
    }
    this.#rvUnavailable = false;
    this.stats.lists++;
    this.#synced(result.items, result.resourceVersion, "list");
  }

  #listAt(rv: string, signal: AbortSignal): Promise<ListResult> {
    return listAll(
      (params) => this.#o.connection.fetch(this.#query(params), { signal }),
      rv,
      {
        onRestart: () =>
          this.#o.log.log("info", "list expired between pages; listing again whole", {
            namespace: this.#o.namespace,
            resource: this.#kind,
          }),
      },
    );
  }

  #synced(items: KubeItem[], rv: string, via: "list" | "streaming list"): void {
    const first = !this.#store.synced;
    this.#store.replace(items, rv);
    this.#lastSyncRV = rv;
    this.#needList = false;
    this.health.heard();
    this.#o.log.log("info", first ? "synced" : "relisted", {
      namespace: this.#o.namespace,
      resource: this.#kind,
      items: items.length,
      resourceVersion: rv,
      via,
    });
  }

  #watchTimeoutS(): number {
    const [lo, hi] = WATCH_TIMEOUT_RANGE_S;
    return Math.floor(lo + this.#o.random() * (hi - lo));
  }

  /** Watches until the server ends the watch ("ended") or it is restarted for silence
   * ("quiet"); throws on failure. A streaming list (client-go `watchList`) first collects every
   * object until the initial-events-end bookmark, then goes on as a plain watch (client-go
   * `watch` and `handleWatch`). */
  async #watch(signal: AbortSignal, streamingList: boolean): Promise<"ended" | "quiet"> {
    const ac = new AbortController();
    const onAbort = () => ac.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const conn = this.#o.connection;
    // Another watch found the shared client dead and replaced it: this one ran on it too.
    const offReset = conn.onReset?.((dead) => ac.abort(new ConnectionReplaced(dead)));
    const dog = new Watchdog(ac, {
      connection: conn.liveness?.(),
      idleTimeoutMs: this.#o.idleTimeoutMs,
      probeAfterMs: this.#o.probeAfterMs,
      probeTimeoutMs: this.#o.probeTimeoutMs,
      probe: async (s) => {
        const resp = await conn.fetch("/version", { signal: s });
        await resp.body?.cancel();
      },
      // A quiet watch on a live connection is still current; a probe alone never makes a
      // broken watch healthy, though.
      onAlive: () => {
        if (this.health.healthy) this.health.heard();
      },
    });
    // Initial events of a streaming list, by namespace/name, until the end bookmark.
    let initial = streamingList ? new Map<string, KubeItem>() : undefined;
    let initialEnd: { heard: () => void; stop: () => void } | undefined;
    const params: Record<string, string> = {
      watch: "1",
      allowWatchBookmarks: "true",
      resourceVersion: this.#lastSyncRV,
      timeoutSeconds: String(this.#watchTimeoutS()),
    };
    if (streamingList) {
      params.sendInitialEvents = "true";
      params.resourceVersionMatch = "NotOlderThan";
      // client-go `rewatchResourceVersion`: the newest state once ours was refused.
      if (this.#rvUnavailable) params.resourceVersion = "";
    }
    this.#watchOpened = false;
    try {
      this.stats.watches++;
      const resp = await this.#o.connection.fetch(this.#query(params), {
        signal: ac.signal,
        // The API server gzips a streaming list one member per flush (WatchListCompression),
        // and Deno's fetch ends the body after the first member: ask for it uncompressed.
        headers: { "Accept-Encoding": "identity" },
      });
      if (!resp.ok) throw await apiError(resp);
      if (!resp.body) throw new Error("watch response has no body");
      this.#watchOpened = true;
      // The silence counts from the answer: a loaded API server may hold a request in its
      // priority-and-fairness queue (up to 15 s), or until its watch cache is ready after a
      // restart, and that is no sign it ignores sendInitialEvents.
      if (initial) initialEnd = this.#awaitInitialEnd(ac, () => initial !== undefined);
      for await (
        const ev of watchEvents(resp.body, { onBytes: () => dog.touch(), signal: ac.signal })
      ) {
        if (initial) {
          initialEnd!.heard();
          if (this.#collect(ev, initial)) initial = undefined;
        } else {
          this.#handle(ev);
        }
      }
      if (initial) {
        throw new NoInitialEventsEnd("streaming list ended before its initial-events-end bookmark");
      }
      return "ended";
    } catch (e) {
      if (ac.signal.aborted && !signal.aborted && ac.signal.reason instanceof QuietWatch) {
        if (initial) throw ac.signal.reason;
        this.#o.log.log("info", "restarting a quiet watch", {
          namespace: this.#o.namespace,
          resource: this.#kind,
          reason: ac.signal.reason.message,
          resourceVersion: this.#lastSyncRV,
        });
        return "quiet";
      }
      // An abort surfaces as a DOMException or the stream's error; report the cause.
      if (ac.signal.aborted && !signal.aborted && ac.signal.reason instanceof Error) {
        throw ac.signal.reason;
      }
      throw e;
    } finally {
      dog.stop();
      offReset?.();
      initialEnd?.stop();
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Aborts `ac` with {@linkcode NoInitialEventsEnd} once a streaming list has been silent for
   * the quiet limit while still `waiting` for its end bookmark. One timer, re-armed only when it
   * fires, for the rest of the silence. */
  #awaitInitialEnd(
    ac: AbortController,
    waiting: () => boolean,
  ): { heard: () => void; stop: () => void } {
    const limit = this.#o.initialEventsQuietMs;
    let lastAt = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const check = () => {
      if (!waiting()) return;
      const quiet = performance.now() - lastAt;
      if (quiet < limit) {
        timer = setTimeout(check, limit - quiet);
        return;
      }
      ac.abort(
        new NoInitialEventsEnd(
          `streaming list sent nothing for ${Math.round(quiet)} ms and no ` +
            `${INITIAL_EVENTS_END} bookmark: the server (or a proxy) ignores sendInitialEvents`,
        ),
      );
    };
    timer = setTimeout(check, limit);
    return {
      heard: () => lastAt = performance.now(),
      stop: () => clearTimeout(timer),
    };
  }

  /** One event of a streaming list's initial phase; true once the list is complete. */
  #collect(ev: WatchEvent, items: Map<string, KubeItem>): boolean {
    if (ev.type === "ERROR") throw statusError(ev.object);
    this.#received++;
    const m = ev.object.metadata;
    if (ev.type === "BOOKMARK") {
      if (m?.annotations?.[INITIAL_EVENTS_END] !== "true") return false;
      this.stats.lists++;
      this.#rvUnavailable = false;
      this.#synced([...items.values()], m.resourceVersion ?? "", "streaming list");
      return true;
    }
    const key = `${m?.namespace}/${m?.name}`;
    if (ev.type === "DELETED") items.delete(key);
    else items.set(key, ev.object);
    return false;
  }

  /** Applies one watch event and advances the last synced resourceVersion (client-go
   * `handleAnyWatch` with `setLastSyncResourceVersion`). */
  #handle(ev: WatchEvent): void {
    if (ev.type === "ERROR") throw statusError(ev.object);
    const rv = ev.object.metadata?.resourceVersion;
    this.#received++;
    this.stats.lastEventAt = Date.now();
    if (ev.type === "BOOKMARK") {
      this.#store.touch();
    } else {
      this.stats.events++;
      this.#store.apply(ev.type, ev.object);
    }
    if (rv) this.#lastSyncRV = rv;
    this.health.heard();
    // The watch works: a later failure is a new one, not the next step of the last.
    this.#backoff.reset();
  }
}

/** Sleeps `ms`, or less if `signal` aborts. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
