/**
 * The slice store: the EndpointSlices the watch loops have seen, per namespace, and for each
 * watched Service an immutable merged {@linkcode ServiceView}, rebuilt only when the Service's
 * endpoints change. A Service that stops being served (gone, or no longer selected) is announced
 * once as a tombstone and dropped. The index a reader sees never goes backwards within the
 * process. Which Services are watched is the {@linkcode Selection}'s concern; listeners are a
 * {@linkcode ChangeFeed}.
 *
 * @module
 */
import type { V1EndpointSlice } from "@kubernetes/client-node";
import { ChangeFeed } from "./change_feed.ts";
import { compareKeys } from "./endpoints.ts";
import type { Logger } from "./log.ts";
import { MergedService, NO_ENDPOINTS } from "./merged_service.ts";
import type { ReflectorStore } from "./store.ts";
import { Selection, type WatchedServices } from "./selection.ts";
import { ServiceView } from "./service_view.ts";

/** The label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/** What readers of views need from a cache: its views, its index and its changes. A view of the
 * cache that leaves something out (lib/self_view.ts: without this Pod) is one too. */
export type ViewSource = Pick<
  EndpointCache,
  "ready" | "index" | "view" | "views" | "subscribe" | "synced" | "onSynced"
>;

/** Called with the views that changed (tombstones included), after each change. */
export type ChangeListener = (changed: ServiceView[]) => void;

/** Options for {@linkcode EndpointCache}. */
export interface CacheOptions {
  /** Where a relist older than the served view and a missing Service are reported. Default:
   * nowhere. */
  log?: Logger;
}

interface SliceState {
  /** The Service of each slice ("" for a slice without the label), by slice name. */
  owners: Map<string, string>;
  /** Per Service with slices, its endpoints merged slice by slice. */
  services: Map<string, MergedService>;
  synced: boolean;
  /** Newest resourceVersion seen in this namespace's slice stream. */
  resourceVersion: string;
}

/** Slices per namespace and merged views per watched Service. */
export class EndpointCache {
  #selection: Selection;
  #namespaces = new Map<string, SliceState>();
  #views = new Map<string, ServiceView>();
  #feed = new ChangeFeed<ServiceView[]>({
    onError: (error) => this.#log?.log("error", "change listener failed", { error }),
  });
  #log?: Logger;
  /** Highest index handed out: what /v1/services shows; only grows. */
  #index = 0;
  /** Moves on every change of the set of views. */
  #generation = 0;
  /** Named Services already reported as having no EndpointSlices. */
  #saidEmpty = new Set<string>();
  /** Namespaces whose first complete list was announced to {@linkcode onSynced} listeners. */
  #announced = new Set<string>();
  #syncFeed = new ChangeFeed<string>({
    onError: (error) => this.#log?.log("error", "sync listener failed", { error }),
  });

  /** A cache for these namespaces, each with what is watched in it. */
  constructor(namespaces: Map<string, WatchedServices>, options: CacheOptions = {}) {
    this.#selection = new Selection(namespaces);
    this.#log = options.log;
    for (const ns of namespaces.keys()) {
      this.#namespaces.set(ns, {
        owners: new Map(),
        services: new Map(),
        synced: false,
        resourceVersion: "0",
      });
    }
  }

  /** Which Services are watched. */
  get selection(): Selection {
    return this.#selection;
  }

  /** True once every namespace has had one complete list (of Services too, in selector mode). */
  get ready(): boolean {
    for (const ns of this.#namespaces.keys()) if (!this.synced(ns)) return false;
    return true;
  }

  /** The highest index handed out so far, tombstones included: never goes backwards. */
  get index(): number {
    return this.#index;
  }

  /** Moves on every change of any view (and of the set of views): the list's ETag. */
  get generation(): number {
    return this.#generation;
  }

  /** Whether this namespace has had one complete list. */
  synced(namespace: string): boolean {
    return !!this.#namespaces.get(namespace)?.synced && this.#selection.synced(namespace);
  }

  /** Whether this namespace is watched at all. */
  watchesNamespace(namespace: string): boolean {
    return this.#selection.watchesNamespace(namespace);
  }

  /** Whether a Service is watched, as far as the configuration (and selector) can tell. */
  watches(namespace: string, name: string): boolean {
    return this.#selection.watches(namespace, name);
  }

  /** The current view of a Service; undefined until its namespace is synced, and for a Service
   * that is not served (not watched, or in all-services/selector mode, without slices). */
  view(namespace: string, name: string): ServiceView | undefined {
    if (!this.synced(namespace)) return undefined;
    return this.#views.get(`${namespace}/${name}`);
  }

  /** How many EndpointSlices a Service has. The EndpointSlice controller keeps at least one for
   * every Service with a selector, so 0 means the Service does not exist (or has no selector). */
  sliceCount(namespace: string, name: string): number {
    return this.#namespaces.get(namespace)?.services.get(name)?.size ?? 0;
  }

  /** Every current view, sorted by namespace and name. */
  views(): ServiceView[] {
    return [...this.#views.values()]
      .sort((a, b) => compareKeys(a.namespace, b.namespace) || compareKeys(a.name, b.name));
  }

  /** Subscribes to changes; returns the function that unsubscribes. */
  subscribe(listener: ChangeListener): () => void {
    return this.#feed.subscribe(listener);
  }

  /** Calls `listener` with each namespace when it has had its first complete list (after the
   * changes that list made were published); returns the function that unsubscribes. */
  onSynced(listener: (namespace: string) => void): () => void {
    return this.#syncFeed.subscribe(listener);
  }

  /** Announces a namespace's first complete list once. */
  #noteSynced(namespace: string): void {
    if (this.#announced.has(namespace) || !this.synced(namespace)) return;
    this.#announced.add(namespace);
    this.#syncFeed.publish(namespace);
  }

  /** The store a namespace's EndpointSlice reflector writes into. */
  sliceStore(namespace: string): ReflectorStore {
    const ns = this.#state(namespace);
    return {
      get synced() {
        return ns.synced;
      },
      replace: (items, rv) => this.#replace(namespace, items as V1EndpointSlice[], rv),
      apply: (type, item) => this.#apply(namespace, type, item as V1EndpointSlice),
      touch: () => {},
    };
  }

  /** The store a namespace's Service reflector writes into (selector mode). */
  serviceStore(namespace: string): ReflectorStore {
    return this.#selection.store(namespace, (ns, change) => {
      if (change.relist) {
        this.#checkRelist(ns, "services", this.#selection.resourceVersion(ns), change);
      }
      if (this.#state(ns).synced) this.#rebuild(ns, change.names, change.resourceVersion);
      this.#noteSynced(ns);
    });
  }

  #state(namespace: string): SliceState {
    const ns = this.#namespaces.get(namespace);
    if (!ns) throw new RangeError(`Namespace ${namespace} is not watched by this cache`);
    return ns;
  }

  /** A relist older than what this stream stored means the store itself went back (an etcd
   * restore): say so; indexes keep moving forward regardless. */
  #checkRelist(
    namespace: string,
    resource: string,
    before: string,
    change: { resourceVersion: string },
  ): void {
    if (Number(change.resourceVersion) >= Number(before)) return;
    this.#log?.log("warn", "relist is older than the served view", {
      namespace,
      resource,
      resourceVersion: change.resourceVersion,
      served: before,
      note: "the API server's store went back (an etcd restore?); indexes keep moving forward",
    });
  }

  #replace(namespace: string, slices: V1EndpointSlice[], resourceVersion: string): void {
    const ns = this.#state(namespace);
    if (ns.synced) {
      this.#checkRelist(namespace, "endpointslices", ns.resourceVersion, { resourceVersion });
    }
    const affected = new Set(ns.services.keys());
    const listed = new Set<string>();
    // New and changed slices first, vanished ones after: a slice renamed with the same endpoints
    // then changes nothing (the old one still holds them while the new one comes in).
    for (const s of slices) {
      const name = s.metadata?.name ?? "";
      listed.add(name);
      this.#store(ns, name, s);
    }
    for (const name of [...ns.owners.keys()]) if (!listed.has(name)) this.#store(ns, name);
    for (const name of ns.services.keys()) affected.add(name);
    for (const name of this.#selection.names(namespace)) affected.add(name);
    for (const v of this.#views.values()) if (v.namespace === namespace) affected.add(v.name);
    ns.synced = true;
    ns.resourceVersion = resourceVersion;
    this.#rebuild(namespace, affected, resourceVersion);
    this.#noteSynced(namespace);
  }

  #apply(namespace: string, type: string, slice: V1EndpointSlice): void {
    const ns = this.#state(namespace);
    const sliceName = slice.metadata?.name ?? "";
    const affected = new Set<string>();
    const before = ns.owners.get(sliceName);
    if (before) affected.add(before);
    const after = this.#store(ns, sliceName, type === "DELETED" ? undefined : slice);
    if (after) affected.add(after);
    ns.resourceVersion = slice.metadata?.resourceVersion ?? ns.resourceVersion;
    this.#rebuild(namespace, affected, ns.resourceVersion);
  }

  /** Stores a slice (or, without one, removes it) in its Service's merge; returns its Service. */
  #store(ns: SliceState, name: string, slice?: V1EndpointSlice): string | undefined {
    const before = ns.owners.get(name);
    const after = slice ? slice.metadata?.labels?.[SERVICE_NAME_LABEL] ?? "" : undefined;
    if (before && before !== after) {
      const merged = ns.services.get(before);
      merged?.delete(name);
      if (merged?.size === 0) ns.services.delete(before);
    }
    if (after === undefined) ns.owners.delete(name);
    else ns.owners.set(name, after);
    if (!slice || !after) return undefined;
    let merged = ns.services.get(after);
    if (!merged) ns.services.set(after, merged = new MergedService());
    merged.set(slice);
    return after;
  }

  #rebuild(namespace: string, names: Set<string>, resourceVersion: string): void {
    if (!this.synced(namespace)) return;
    const changed: ServiceView[] = [];
    const empty: string[] = [];
    const services = this.#state(namespace).services;
    for (const name of names) {
      const key = `${namespace}/${name}`;
      const before = this.#views.get(key);
      const merged = services.get(name);
      const served = this.#selection.watches(namespace, name) &&
        (merged !== undefined || this.#selection.keepsEmpty(namespace));
      if (!served) {
        if (!before) continue;
        this.#views.delete(key);
        changed.push(
          new ServiceView({ namespace, name }, {
            resourceVersion,
            endpoints: NO_ENDPOINTS,
            index: this.#nextIndex(resourceVersion, before),
            removed: true,
          }),
        );
        continue;
      }
      if (!merged && !this.#saidEmpty.has(key)) {
        this.#saidEmpty.add(key);
        empty.push(key);
      }
      // The merge hands out a new array only when the endpoints changed: no comparison here.
      const endpoints = merged?.endpoints ?? NO_ENDPOINTS;
      if (before && before.endpoints === endpoints) continue;
      const index = this.#nextIndex(resourceVersion, before);
      const view = new ServiceView({ namespace, name }, { resourceVersion, endpoints, index });
      this.#views.set(key, view);
      changed.push(view);
    }
    if (empty.length) this.#sayEmpty(empty);
    if (changed.length === 0) return;
    this.#generation++;
    this.#feed.publish(changed);
  }

  /** The index of a new view: its resourceVersion, and never below an index already handed out
   * to any Service, so every change comes at or after every earlier one and a stream resumed
   * from an id misses none. Watches of different namespaces (and selector mode's Service and
   * slice watches) deliver out of resourceVersion order: one 1995 after another's 2000 gets
   * 2000. Not past the view it replaces (the store went back, or an event came twice): just
   * past everything handed out. */
  #nextIndex(resourceVersion: string, before: ServiceView | undefined): number {
    let index = Math.max(Number(resourceVersion) || 0, this.#index);
    if (before && index <= before.index) index = this.#index + 1;
    this.#index = Math.max(this.#index, index);
    return index;
  }

  /** Says once per Service, in one line per change, that watched Services have no slices. */
  #sayEmpty(keys: string[]): void {
    this.#log?.log("info", "watched Service has no EndpointSlices", {
      service: keys[0],
      count: keys.length,
      services: keys.slice(0, MAX_NAMES_LOGGED),
      note: "served empty until it appears; check the name if it should exist",
    });
  }
}

/** Names listed in one log line; the count says how many more. */
const MAX_NAMES_LOGGED = 20;
