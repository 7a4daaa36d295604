/**
 * The endpoint cache: the EndpointSlices the watch loop has seen, per namespace, and for each
 * watched Service an immutable merged view that is rebuilt only when the Service's endpoints
 * change. HTTP handlers read views and never call the API server; serialized bodies are made
 * once per view, not per request.
 *
 * @module
 */
import type { V1EndpointSlice } from "@kubernetes/client-node";
import { type EndpointView, mergeSlices, renderV1Endpoints } from "./endpoints.ts";

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
  #v1Body?: string;

  /** Makes a view; `index` is parsed from `resourceVersion`. */
  constructor(
    key: { namespace: string; name: string },
    state: { resourceVersion: string; endpoints: EndpointView[]; changedAt?: Date },
  ) {
    this.namespace = key.namespace;
    this.name = key.name;
    this.resourceVersion = state.resourceVersion;
    this.index = Number(state.resourceVersion) || 0;
    this.endpoints = state.endpoints;
    this.changedAt = state.changedAt ?? new Date();
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

interface NamespaceState {
  slices: Map<string, V1EndpointSlice>;
  synced: boolean;
  /** Last time the API server told us something for this namespace (list, event, bookmark). */
  contactAt?: Date;
}

/** Options for {@linkcode EndpointCache}. */
export interface EndpointCacheOptions {
  /** Whether a Service is watched. Default: the services given to the constructor. */
  wanted?: (namespace: string, name: string) => boolean;
}

/** Slices per namespace and merged views per watched Service. */
export class EndpointCache {
  #namespaces = new Map<string, NamespaceState>();
  #views = new Map<string, ServiceView>();
  #listeners = new Set<ChangeListener>();
  #wanted: (namespace: string, name: string) => boolean;

  /** A cache for these services, whose namespaces are the ones to watch. */
  constructor(
    services: { namespace: string; name: string }[],
    options: EndpointCacheOptions = {},
  ) {
    const keys = new Set(services.map((s) => `${s.namespace}/${s.name}`));
    this.#wanted = options.wanted ?? ((ns, name) => keys.has(`${ns}/${name}`));
    for (const s of services) {
      if (!this.#namespaces.has(s.namespace)) {
        this.#namespaces.set(s.namespace, { slices: new Map(), synced: false });
      }
    }
  }

  /** The namespaces this cache covers. */
  get namespaces(): string[] {
    return [...this.#namespaces.keys()];
  }

  /** True once every namespace has had one complete list. */
  get ready(): boolean {
    for (const ns of this.#namespaces.values()) if (!ns.synced) return false;
    return true;
  }

  /** Whether this namespace has had one complete list. */
  synced(namespace: string): boolean {
    return this.#namespaces.get(namespace)?.synced ?? false;
  }

  /** Last time the API server was heard from for this namespace. */
  contactAt(namespace: string): Date | undefined {
    return this.#namespaces.get(namespace)?.contactAt;
  }

  /** The current view of a Service; undefined until its namespace is synced. */
  view(namespace: string, name: string): ServiceView | undefined {
    const ns = this.#namespaces.get(namespace);
    if (!ns?.synced) return undefined;
    return this.#views.get(`${namespace}/${name}`) ??
      new ServiceView({ namespace, name }, { resourceVersion: "0", endpoints: [] });
  }

  /** Subscribes to changes; returns the function that unsubscribes. */
  subscribe(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Replaces a namespace's slices with a complete list taken at `resourceVersion`. */
  replace(namespace: string, slices: V1EndpointSlice[], resourceVersion: string): void {
    const ns = this.#state(namespace);
    const affected = new Set(this.#servicesOf(ns.slices.values()));
    ns.slices = new Map(slices.map((s) => [s.metadata?.name ?? "", s]));
    for (const name of this.#servicesOf(ns.slices.values())) affected.add(name);
    ns.synced = true;
    ns.contactAt = new Date();
    this.#rebuild(namespace, affected, resourceVersion);
  }

  /** Applies one watch event (ADDED, MODIFIED or DELETED) for a slice. */
  apply(namespace: string, type: string, slice: V1EndpointSlice): void {
    const ns = this.#state(namespace);
    const sliceName = slice.metadata?.name ?? "";
    const affected = new Set(this.#servicesOf([slice]));
    const old = ns.slices.get(sliceName);
    if (old) { for (const n of this.#servicesOf([old])) affected.add(n); }
    if (type === "DELETED") ns.slices.delete(sliceName);
    else ns.slices.set(sliceName, slice);
    ns.contactAt = new Date();
    this.#rebuild(namespace, affected, slice.metadata?.resourceVersion ?? "0");
  }

  /** Records that the API server was heard from (a bookmark) without a change. */
  touch(namespace: string): void {
    this.#state(namespace).contactAt = new Date();
  }

  #state(namespace: string): NamespaceState {
    const ns = this.#namespaces.get(namespace);
    if (!ns) throw new RangeError(`Namespace ${namespace} is not watched by this cache`);
    return ns;
  }

  *#servicesOf(slices: Iterable<V1EndpointSlice>): Iterable<string> {
    for (const s of slices) {
      const name = s.metadata?.labels?.[SERVICE_NAME_LABEL];
      if (name) yield name;
    }
  }

  #rebuild(namespace: string, names: Set<string>, resourceVersion: string): void {
    const ns = this.#state(namespace);
    const changed: ServiceView[] = [];
    for (const name of names) {
      if (!this.#wanted(namespace, name)) continue;
      const own = [...ns.slices.values()].filter((s) =>
        s.metadata?.labels?.[SERVICE_NAME_LABEL] === name
      );
      const endpoints = mergeSlices(own);
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
