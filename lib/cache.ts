/**
 * The endpoint cache: the EndpointSlices the watch loops have seen, per namespace, and for each
 * watched Service an immutable merged view that is rebuilt only when the Service's endpoints
 * change. Which Services are watched is fixed (a list of names), every Service of the namespace,
 * or decided by a Service watch (a label selector). HTTP handlers read views and never call the
 * API server; serialized bodies are made once per view, not per request.
 *
 * @module
 */
import type { V1EndpointSlice } from "@kubernetes/client-node";
import { compareKeys, type EndpointView, mergeSlices, renderV1Endpoints } from "./endpoints.ts";
import type { KubeItem, ReflectorStore } from "./reflector.ts";

/** The label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/** One Service's endpoints at one point in time. Never mutated: a change makes a new view. */
export class ServiceView {
  /** Namespace of the Service. */
  readonly namespace: string;
  /** Name of the Service. */
  readonly name: string;
  /** resourceVersion of the change (or list) that made this view. */
  readonly resourceVersion: string;
  /** Monotonic change index, the resourceVersion as a number. */
  readonly index: number;
  /** When this view was made (the Service's endpoints last changed). */
  readonly changedAt: Date;
  /** The merged, de-duplicated endpoints. */
  readonly endpoints: readonly EndpointView[];
  /** True for a tombstone: the Service left the view (no longer selected, or gone), at `index`;
   * listeners get it once, readers never see it as a current view. */
  readonly removed: boolean;
  #v1Body?: string;

  /** Makes a view; `index` is parsed from `resourceVersion`. */
  constructor(
    key: { namespace: string; name: string },
    state: { resourceVersion: string; endpoints: EndpointView[]; removed?: boolean },
  ) {
    this.namespace = key.namespace;
    this.name = key.name;
    this.resourceVersion = state.resourceVersion;
    this.index = Number(state.resourceVersion) || 0;
    this.endpoints = state.endpoints;
    this.removed = state.removed ?? false;
    this.changedAt = new Date();
  }

  /** The v1 Endpoints JSON body, serialized on first use and kept. */
  get v1Body(): string {
    return this.#v1Body ??= JSON.stringify(renderV1Endpoints(
      { name: this.name, namespace: this.namespace, resourceVersion: this.resourceVersion },
      [...this.endpoints],
    ));
  }
}

/** Called with the views that changed, after each change. */
export type ChangeListener = (changed: ServiceView[]) => void;

/** Which Services of a namespace are watched: named ones, all, or those a selector picks. */
export type Watched =
  | { kind: "names"; names: string[] }
  | { kind: "all" }
  | { kind: "selector"; selector: string };

interface NamespaceState {
  watched: Watched;
  /** Names picked by the Service watch (selector mode). */
  selected: Set<string>;
  servicesSynced: boolean;
  slices: Map<string, V1EndpointSlice>;
  synced: boolean;
  /** Newest resourceVersion seen in this namespace's slice stream. */
  resourceVersion: string;
}

/** Slices per namespace and merged views per watched Service. */
export class EndpointCache {
  #namespaces = new Map<string, NamespaceState>();
  #views = new Map<string, ServiceView>();
  #listeners = new Set<ChangeListener>();

  /** A cache for these namespaces, each with what is watched in it. */
  constructor(namespaces: Map<string, Watched>) {
    for (const [ns, watched] of namespaces) {
      this.#namespaces.set(ns, {
        watched,
        selected: new Set(),
        servicesSynced: watched.kind !== "selector",
        slices: new Map(),
        synced: false,
        resourceVersion: "0",
      });
    }
  }

  /** The namespaces this cache covers, with what is watched in each. */
  get namespaces(): Map<string, Watched> {
    return new Map([...this.#namespaces].map(([ns, s]) => [ns, s.watched]));
  }

  /** True once every namespace has had one complete list (of Services too, in selector mode). */
  get ready(): boolean {
    for (const ns of this.#namespaces.values()) {
      if (!ns.synced || !ns.servicesSynced) return false;
    }
    return true;
  }

  /** The largest index of any view: moves whenever any watched Service changes. */
  get index(): number {
    let max = 0;
    for (const v of this.#views.values()) max = Math.max(max, v.index);
    return max;
  }

  /** Whether this namespace has had one complete list. */
  synced(namespace: string): boolean {
    const ns = this.#namespaces.get(namespace);
    return !!ns && ns.synced && ns.servicesSynced;
  }

  /** Whether a Service is watched (by name, by selector or as one of all). */
  watches(namespace: string, name: string): boolean {
    const ns = this.#namespaces.get(namespace);
    if (!ns) return false;
    switch (ns.watched.kind) {
      case "names":
        return ns.watched.names.includes(name);
      case "all":
        return true;
      case "selector":
        return ns.selected.has(name);
    }
  }

  /** The current view of a watched Service; undefined until its namespace is synced. */
  view(namespace: string, name: string): ServiceView | undefined {
    if (!this.synced(namespace)) return undefined;
    return this.#views.get(`${namespace}/${name}`) ??
      (this.watches(namespace, name)
        ? new ServiceView({ namespace, name }, { resourceVersion: "0", endpoints: [] })
        : undefined);
  }

  /** Every current view of a watched Service, sorted by namespace and name. */
  views(): ServiceView[] {
    return [...this.#views.values()].filter((v) => this.watches(v.namespace, v.name))
      .sort((a, b) => compareKeys(a.namespace, b.namespace) || compareKeys(a.name, b.name));
  }

  /** Subscribes to changes; returns the function that unsubscribes. */
  subscribe(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
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
    const ns = this.#state(namespace);
    const names = new Map<string, string>();
    const update = (rv: string) => {
      const before = ns.selected;
      ns.selected = new Set(names.values());
      const affected = new Set([...before, ...ns.selected]);
      for (const name of before) {
        if (!ns.selected.has(name)) this.#views.delete(`${namespace}/${name}`);
      }
      if (ns.synced) this.#rebuild(namespace, affected, rv);
    };
    return {
      get synced() {
        return ns.servicesSynced;
      },
      replace: (items, rv) => {
        names.clear();
        for (const s of items) names.set(s.metadata?.uid ?? "", s.metadata?.name ?? "");
        ns.servicesSynced = true;
        update(rv);
      },
      apply: (type, item: KubeItem) => {
        const uid = item.metadata?.uid ?? "";
        if (type === "DELETED") names.delete(uid);
        else names.set(uid, item.metadata?.name ?? "");
        update(item.metadata?.resourceVersion ?? ns.resourceVersion);
      },
      touch: () => {},
    };
  }

  #state(namespace: string): NamespaceState {
    const ns = this.#namespaces.get(namespace);
    if (!ns) throw new RangeError(`Namespace ${namespace} is not watched by this cache`);
    return ns;
  }

  #replace(namespace: string, slices: V1EndpointSlice[], resourceVersion: string): void {
    const ns = this.#state(namespace);
    const affected = new Set(servicesOf(ns.slices.values()));
    ns.slices = new Map(slices.map((s) => [s.metadata?.name ?? "", s]));
    for (const name of servicesOf(ns.slices.values())) affected.add(name);
    if (ns.watched.kind === "names") { for (const n of ns.watched.names) affected.add(n); }
    for (const n of ns.selected) affected.add(n);
    ns.synced = true;
    ns.resourceVersion = resourceVersion;
    this.#rebuild(namespace, affected, resourceVersion);
  }

  #apply(namespace: string, type: string, slice: V1EndpointSlice): void {
    const ns = this.#state(namespace);
    const sliceName = slice.metadata?.name ?? "";
    const affected = new Set(servicesOf([slice]));
    const old = ns.slices.get(sliceName);
    if (old) { for (const n of servicesOf([old])) affected.add(n); }
    if (type === "DELETED") ns.slices.delete(sliceName);
    else ns.slices.set(sliceName, slice);
    ns.resourceVersion = slice.metadata?.resourceVersion ?? ns.resourceVersion;
    this.#rebuild(namespace, affected, ns.resourceVersion);
  }

  #rebuild(namespace: string, names: Set<string>, resourceVersion: string): void {
    const ns = this.#state(namespace);
    const changed: ServiceView[] = [];
    // One pass over the namespace's slices, however many Services changed (a relist of a
    // namespace of 1,000 Services would otherwise scan every slice 1,000 times).
    const bySvc = new Map<string, V1EndpointSlice[]>();
    for (const s of ns.slices.values()) {
      const name = s.metadata?.labels?.[SERVICE_NAME_LABEL];
      if (!name || !names.has(name)) continue;
      const list = bySvc.get(name);
      if (list) list.push(s);
      else bySvc.set(name, [s]);
    }
    for (const name of names) {
      if (!this.watches(namespace, name)) continue;
      const endpoints = mergeSlices(bySvc.get(name) ?? []);
      const key = `${namespace}/${name}`;
      const before = this.#views.get(key);
      if (before && JSON.stringify(before.endpoints) === JSON.stringify(endpoints)) continue;
      const view = new ServiceView({ namespace, name }, { resourceVersion, endpoints });
      this.#views.set(key, view);
      changed.push(view);
    }
    if (changed.length === 0) return;
    for (const l of this.#listeners) l(changed);
  }
}

function* servicesOf(slices: Iterable<V1EndpointSlice>): Iterable<string> {
  for (const s of slices) {
    const name = s.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (name) yield name;
  }
}
