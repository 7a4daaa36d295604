/**
 * Health of the watches, one {@linkcode WatchHealth} per reflector (a namespace's EndpointSlice
 * watch and, in selector mode, its Service watch), gathered per namespace by a
 * {@linkcode HealthRegistry}. A watch is healthy only from the first complete list, event or
 * bookmark after a (re)connect, never from response headers alone, so a flapping watch stays
 * broken; from the moment it is known broken, the last moment it was known current is kept.
 * That moment is what `lastUpdated`, the age headers and `--ready-max-staleness` read.
 *
 * @module
 */

/** The health of one watch. */
export class WatchHealth {
  /** Namespace of the watch. */
  readonly namespace: string;
  /** Resource of the watch, e.g. `endpointslices.discovery.k8s.io`. */
  readonly resource: string;
  #now: () => number;
  #healthy = false;
  #lastHealthyAt?: number;
  #brokenSince?: number;
  #lastError?: string;

  /** A watch that has not been heard from yet. `now` is replaceable in tests. */
  constructor(labels: { namespace: string; resource: string }, now: () => number = Date.now) {
    this.namespace = labels.namespace;
    this.resource = labels.resource;
    this.#now = now;
  }

  /** The API server just told this watch something: a complete list, an event or a bookmark. */
  heard(): void {
    this.#healthy = true;
    this.#lastHealthyAt = this.#now();
    this.#brokenSince = undefined;
    this.#lastError = undefined;
  }

  /** The watch is known broken, and why. Keeps the first moment it broke. */
  broken(error: string): void {
    const now = this.#now();
    if (this.#healthy) this.#lastHealthyAt = now;
    this.#healthy = false;
    this.#brokenSince ??= now;
    this.#lastError = error;
  }

  /** Whether the watch is open and has been heard from since it (re)connected. */
  get healthy(): boolean {
    return this.#healthy;
  }

  /** Since when (ms since the epoch) the watch has been broken; undefined while healthy. */
  get brokenSince(): number | undefined {
    return this.#brokenSince;
  }

  /** Why the watch last failed; undefined while healthy. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** When the view was last known current (ms): now while healthy, else the last healthy
   * moment; undefined before the first complete list. */
  knownCurrentAt(): number | undefined {
    return this.#healthy ? this.#now() : this.#lastHealthyAt;
  }
}

/** The health of one namespace: every watch of it gathered. */
export interface NamespaceHealth {
  namespace: string;
  /** Every watch of the namespace is healthy. */
  healthy: boolean;
  /** The earliest moment a watch of it broke (ms); undefined when none is broken. */
  brokenSince?: number;
  /** Why, for the watch that broke first. */
  lastError?: string;
  /** The oldest of its watches' {@linkcode WatchHealth.knownCurrentAt}. */
  knownCurrentAt?: number;
}

/** Every watch's health, by namespace. */
export class HealthRegistry {
  #byNamespace = new Map<string, WatchHealth[]>();

  /** Adds a watch. */
  add(health: WatchHealth): void {
    const list = this.#byNamespace.get(health.namespace);
    if (list) list.push(health);
    else this.#byNamespace.set(health.namespace, [health]);
  }

  /** The gathered health of one namespace; undefined for a namespace nobody watches. */
  namespace(namespace: string): NamespaceHealth | undefined {
    const list = this.#byNamespace.get(namespace);
    if (!list) return undefined;
    const out: NamespaceHealth = { namespace, healthy: list.every((h) => h.healthy) };
    for (const h of list) {
      if (h.brokenSince !== undefined && !(h.brokenSince >= (out.brokenSince ?? Infinity))) {
        out.brokenSince = h.brokenSince;
        out.lastError = h.lastError;
      }
    }
    const at = this.knownCurrentAt(namespace);
    if (at !== undefined) out.knownCurrentAt = at;
    return out;
  }

  /** When a namespace's view was last known current: the oldest of its watches'
   * {@linkcode WatchHealth.knownCurrentAt}; undefined before each has had a complete list. What
   * every data response's headers read, so it gathers nothing else. */
  knownCurrentAt(namespace: string): number | undefined {
    const list = this.#byNamespace.get(namespace);
    if (!list) return undefined;
    let at = Infinity;
    for (const h of list) {
      const t = h.knownCurrentAt();
      if (t === undefined) return undefined;
      if (t < at) at = t;
    }
    return at;
  }

  /** The gathered health of every namespace. */
  all(): NamespaceHealth[] {
    return [...this.#byNamespace.keys()].map((ns) => this.namespace(ns)!);
  }
}
