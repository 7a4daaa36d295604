/**
 * The list/watch loop for one resource in one namespace (EndpointSlices, or Services in
 * selector mode), after client-go's reflector:
 * list (paginated, `resourceVersion=0` so the API server's watch cache answers), then watch from
 * the list's resourceVersion with bookmarks and a random timeout, advancing the resourceVersion
 * on every event and bookmark; relist on 410 Gone (an HTTP status or an ERROR event); back off
 * with jitter on errors; abort a watch that stays silent longer than bookmarks allow (a
 * black-holed connection sends nothing, not even an RST); never give up while the process runs.
 *
 * @module
 */
import type { V1ObjectMeta, V1Status } from "@kubernetes/client-node";
import type { KubeConnection } from "./kube_client.ts";
import { WatchHealth } from "./health.ts";
import type { Logger } from "./log.ts";

/** First backoff after an error; client-go's reflector uses the same 800 ms. */
export const BACKOFF_INITIAL_MS = 800;
/** Backoff cap: the longest a recovered API server waits for us. */
export const BACKOFF_MAX_MS = 30_000;
/** A spell this long without errors resets the backoff to its initial value (as client-go). */
export const BACKOFF_RESET_MS = 120_000;
/** Watch timeouts are random in this range (s), to spread relists on the API server. */
export const WATCH_TIMEOUT_RANGE_S = [300, 600] as const;
/** Page size of the list; the watch cache answers `resourceVersion=0` whole regardless. */
export const LIST_PAGE_SIZE = 500;
/** A list that takes longer than this is abandoned and retried (a black-holed connection). */
export const LIST_TIMEOUT_MS = 60_000;
/** A watch that ends this fast with no event counts as a failure, so it is backed off. */
const SHORT_WATCH_MS = 1_000;

/** An error answer of the API server. */
export class ApiError extends Error {
  /** HTTP status (or the code of an ERROR event's Status). */
  readonly status: number;
  /** The Status reason, e.g. "Expired", "Forbidden". */
  readonly reason: string;
  /** Makes the error from the status code and the Status fields. */
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.reason = reason;
  }
}

/** 410 Gone / Expired: the resourceVersion is older than the server keeps; relist. */
export function isExpired(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 410 || e.reason === "Expired");
}

/** 401: the token expired or was rotated; re-read credentials before the next try. */
export function isUnauthorized(e: unknown): boolean {
  return e instanceof ApiError && e.status === 401;
}

/** 403: RBAC denies us; retrying helps only once someone grants the Role. */
export function isForbidden(e: unknown): boolean {
  return e instanceof ApiError && e.status === 403;
}

/** Counters of one reflector, read by metrics and tests. */
export interface ReflectorStats {
  lists: number;
  watches: number;
  expired: number;
  events: number;
  backoffMs: number;
  lastEventAt?: Date;
  lastError?: string;
}

/** An object the reflector lists and watches: all it reads is the metadata. */
export interface KubeItem {
  metadata?: V1ObjectMeta;
}

/** Where a reflector puts what it lists and watches. */
export interface ReflectorStore {
  /** Whether a complete list has been stored. */
  readonly synced: boolean;
  /** Replaces everything with a complete list taken at `resourceVersion`. */
  replace(items: KubeItem[], resourceVersion: string): void;
  /** Applies an ADDED, MODIFIED or DELETED event. */
  apply(type: string, item: KubeItem): void;
  /** A bookmark: the server was heard from, nothing changed. */
  touch(): void;
}

/** Options for {@linkcode Reflector}. */
export interface ReflectorOptions {
  /** Namespace whose objects are watched. */
  namespace: string;
  /** Collection path below the namespace. Default: EndpointSlices (discovery.k8s.io/v1). */
  resource?: { group: string; version: string; plural: string };
  /** Label selector, e.g. `kubernetes.io/service-name in (a,b)`. */
  labelSelector?: string;
  connection: KubeConnection;
  log: Logger;
  /** Abort a watch silent this long (ms). Default 90 s (bookmarks come every 60 s). */
  idleTimeoutMs?: number;
  /** Sleep; replaced in tests to drive time. Default: a timer that stops on abort. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Random in [0, 1). Default Math.random. */
  random?: () => number;
}

/** The list/watch loop of one resource in one namespace feeding a {@linkcode ReflectorStore}. */
export class Reflector {
  /** Counters, for metrics. */
  readonly stats: ReflectorStats = { lists: 0, watches: 0, expired: 0, events: 0, backoffMs: 0 };
  /** Metric labels: namespace and resource. */
  readonly labels: Record<string, string>;
  /** Whether this watch is healthy, since when it is broken and why. */
  readonly health: WatchHealth;
  #store: ReflectorStore;
  #o: Required<Omit<ReflectorOptions, "labelSelector" | "resource">> & { labelSelector?: string };
  #base: string;
  #kind: string;

  /** A reflector for `options.namespace` writing into `store`. */
  constructor(store: ReflectorStore, options: ReflectorOptions) {
    this.#store = store;
    this.#o = {
      idleTimeoutMs: 90_000,
      sleep: abortableSleep,
      random: Math.random,
      ...options,
    };
    const r = options.resource ??
      { group: "discovery.k8s.io", version: "v1", plural: "endpointslices" };
    const prefix = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
    this.#base = `${prefix}/namespaces/${encodeURIComponent(options.namespace)}/${r.plural}`;
    this.#kind = r.group ? `${r.plural}.${r.group}` : r.plural;
    this.labels = { namespace: options.namespace, resource: this.#kind };
    this.health = new WatchHealth(this.labels as { namespace: string; resource: string });
  }

  /** Runs until `signal` aborts: list, watch, relist on 410, back off on errors. */
  async run(signal: AbortSignal): Promise<void> {
    let rv: string | undefined;
    let backoff = BACKOFF_INITIAL_MS;
    let lastFailure = 0;
    while (!signal.aborted) {
      try {
        if (rv === undefined) rv = await this.#list(signal);
        const started = Date.now();
        const before = this.stats.events;
        rv = await this.#watch(rv, signal);
        if (Date.now() - started < SHORT_WATCH_MS && this.stats.events === before) {
          throw new Error("watch closed at once with no event");
        }
      } catch (e) {
        if (signal.aborted) break;
        this.stats.lastError = (e as Error).message;
        if (isExpired(e)) {
          this.stats.expired++;
          this.#o.log.log("info", "relisting", {
            namespace: this.#o.namespace,
            resource: this.#kind,
            reason: `resourceVersion ${rv} expired (410 Gone): ${(e as Error).message}`,
          });
          rv = undefined;
          continue;
        }
        this.health.broken(this.stats.lastError);
        if (isUnauthorized(e)) this.#o.connection.unauthorized();
        // Not an answer of the API server: the connection itself failed or went silent.
        if (!(e instanceof ApiError)) this.#o.connection.reset();
        if (Date.now() - lastFailure > BACKOFF_RESET_MS) backoff = BACKOFF_INITIAL_MS;
        lastFailure = Date.now();
        // Jitter up to the full delay again, as client-go's wait.Jitter(d, 1.0).
        const delay = Math.min(backoff * (1 + this.#o.random()), BACKOFF_MAX_MS);
        this.stats.backoffMs = Math.round(delay);
        this.#o.log.log(isForbidden(e) ? "error" : "warn", "backing off", {
          namespace: this.#o.namespace,
          resource: this.#kind,
          reason: explain(e, this.#o.namespace, this.#kind),
          delayMs: Math.round(delay),
        });
        await this.#o.sleep(delay, signal);
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
        continue;
      }
      this.stats.backoffMs = 0;
    }
  }

  #query(extra: Record<string, string>): string {
    const q = new URLSearchParams(extra);
    if (this.#o.labelSelector) q.set("labelSelector", this.#o.labelSelector);
    return `${this.#base}?${q}`;
  }

  async #list(signal: AbortSignal): Promise<string> {
    const items: KubeItem[] = [];
    let cont: string | undefined;
    let rv = "";
    const timeout = AbortSignal.any([signal, AbortSignal.timeout(LIST_TIMEOUT_MS)]);
    do {
      const params: Record<string, string> = { limit: String(LIST_PAGE_SIZE) };
      if (cont) params.continue = cont;
      else params.resourceVersion = "0";
      const resp = await this.#o.connection.fetch(this.#query(params), { signal: timeout });
      if (!resp.ok) throw await apiError(resp);
      const body = await resp.json() as {
        items?: KubeItem[];
        metadata?: { resourceVersion?: string; continue?: string };
      };
      items.push(...(body.items ?? []));
      cont = body.metadata?.continue || undefined;
      rv = body.metadata?.resourceVersion ?? rv;
    } while (cont);
    const first = !this.#store.synced;
    this.stats.lists++;
    this.#store.replace(items, rv);
    this.health.heard();
    this.#o.log.log("info", first ? "synced" : "relisted", {
      namespace: this.#o.namespace,
      resource: this.#kind,
      items: items.length,
      resourceVersion: rv,
    });
    return rv;
  }

  /** Watches from `rv` until the server ends the watch; returns the last resourceVersion. */
  async #watch(rv: string, signal: AbortSignal): Promise<string> {
    const [lo, hi] = WATCH_TIMEOUT_RANGE_S;
    const timeoutSeconds = Math.floor(lo + this.#o.random() * (hi - lo));
    const ac = new AbortController();
    const onAbort = () => ac.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    let idle: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(
        () => ac.abort(new Error(`watch silent for ${this.#o.idleTimeoutMs} ms`)),
        this.#o.idleTimeoutMs,
      );
    };
    this.stats.watches++;
    try {
      arm();
      const resp = await this.#o.connection.fetch(
        this.#query({
          watch: "1",
          allowWatchBookmarks: "true",
          resourceVersion: rv,
          timeoutSeconds: String(timeoutSeconds),
        }),
        { signal: ac.signal },
      );
      if (!resp.ok) throw await apiError(resp);
      if (!resp.body) throw new Error("watch response has no body");
      let buf = "";
      for await (const chunk of resp.body.pipeThrough(new TextDecoderStream())) {
        arm();
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) rv = this.#handle(line) ?? rv;
        }
      }
      return rv;
    } catch (e) {
      // An abort surfaces as the abort reason (idle timeout) or a DOMException; report the cause.
      if (ac.signal.aborted && !signal.aborted && ac.signal.reason instanceof Error) {
        throw ac.signal.reason;
      }
      throw e;
    } finally {
      clearTimeout(idle);
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Applies one watch event; returns its resourceVersion. */
  #handle(line: string): string | undefined {
    const ev = JSON.parse(line) as { type: string; object: KubeItem | V1Status };
    if (ev.type === "ERROR") {
      const s = ev.object as V1Status;
      throw new ApiError(s.code ?? 500, s.reason ?? "", s.message ?? "watch ERROR event");
    }
    const item = ev.object as KubeItem;
    const rv = item.metadata?.resourceVersion;
    this.stats.lastEventAt = new Date();
    this.health.heard();
    if (ev.type === "BOOKMARK") {
      this.#store.touch();
    } else {
      this.stats.events++;
      this.#store.apply(ev.type, item);
    }
    return rv;
  }
}

async function apiError(resp: Response): Promise<ApiError> {
  const text = await resp.text();
  try {
    const s = JSON.parse(text) as V1Status;
    return new ApiError(resp.status, s.reason ?? "", s.message ?? text);
  } catch {
    return new ApiError(
      resp.status,
      "",
      `${resp.status} ${resp.statusText}: ${text.slice(0, 200)}`,
    );
  }
}

/** One line for an operator: what failed and, for 403, the Role rule that fixes it. */
export function explain(
  e: unknown,
  namespace: string,
  kind = "endpointslices.discovery.k8s.io",
): string {
  if (isForbidden(e)) {
    const [plural, ...group] = kind.split(".");
    return `forbidden: ${(e as Error).message}. Grant the pod's ServiceAccount a Role in ` +
      `namespace "${namespace}" with the rule {apiGroups: ["${group.join(".")}"], ` +
      `resources: ["${plural}"], verbs: ["get", "list", "watch"]} and a RoleBinding to it`;
  }
  if (isUnauthorized(e)) {
    return `unauthorized (401): ${(e as Error).message}; re-reading the token`;
  }
  return (e as Error)?.message ?? String(e);
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
