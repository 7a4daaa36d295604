/**
 * Which Services are watched, per namespace: a fixed list of names, every Service of the
 * namespace, or the Services a label selector picks (kept current by a Service watch, whose
 * store lives here). Answers "is this watched?" as far as the configuration can tell, and says
 * what is watched in words for error messages and the log.
 *
 * @module
 */
import type { KubeItem, ReflectorStore } from "./store.ts";

/** Names spelled out when describing what is watched: an error line stays one readable line. */
const MAX_NAMES_DESCRIBED = 10;

/** Which Services of a namespace are watched: named ones, all, or those a selector picks. */
export type WatchedServices =
  | { kind: "names"; names: string[] }
  | { kind: "all" }
  | { kind: "selector"; selector: string };

/** Called when the selector's picks change: the names that came or went, at `resourceVersion`. */
export type SelectionChange = (
  namespace: string,
  change: { names: Set<string>; resourceVersion: string; relist: boolean },
) => void;

interface NamespaceSelection {
  watched: WatchedServices;
  /** Names picked by the Service watch (selector mode), by uid. */
  picked: Map<string, string>;
  selected: Set<string>;
  synced: boolean;
  resourceVersion: string;
}

/** The watched Services of every namespace. */
export class Selection {
  #namespaces = new Map<string, NamespaceSelection>();

  /** A selection for these namespaces, each with what is watched in it. */
  constructor(plan: Map<string, WatchedServices>) {
    for (const [ns, watched] of plan) {
      this.#namespaces.set(ns, {
        watched,
        picked: new Map(),
        selected: new Set(),
        synced: watched.kind !== "selector",
        resourceVersion: "0",
      });
    }
  }

  /** The namespaces, with what is watched in each. */
  get plan(): Map<string, WatchedServices> {
    return new Map([...this.#namespaces].map(([ns, s]) => [ns, s.watched]));
  }

  /** Whether this namespace is watched at all. */
  watchesNamespace(namespace: string): boolean {
    return this.#namespaces.has(namespace);
  }

  /** Whether a Service is watched: named, picked by the selector, or any in all-services mode. */
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

  /** Whether a watched Service with no EndpointSlices is still served (empty): names mode. */
  keepsEmpty(namespace: string): boolean {
    return this.#namespaces.get(namespace)?.watched.kind === "names";
  }

  /** The names this namespace watches explicitly (names mode) or has picked (selector mode). */
  names(namespace: string): string[] {
    const ns = this.#namespaces.get(namespace);
    if (!ns) return [];
    return ns.watched.kind === "names" ? ns.watched.names : [...ns.selected];
  }

  /** Whether the selection of this namespace is known (selector mode: after the first list). */
  synced(namespace: string): boolean {
    return this.#namespaces.get(namespace)?.synced ?? false;
  }

  /** What is watched, in words: of one namespace, or of all. */
  describe(namespace?: string): string {
    const one = (ns: string, w: WatchedServices) =>
      w.kind === "names"
        ? w.names.slice(0, MAX_NAMES_DESCRIBED).map((n) => `${ns}/${n}`).join(", ") +
          (w.names.length > MAX_NAMES_DESCRIBED
            ? ` and ${w.names.length - MAX_NAMES_DESCRIBED} more`
            : "")
        : w.kind === "all"
        ? `every Service of ${ns}`
        : `Services of ${ns} with ${w.selector}`;
    const list = namespace === undefined
      ? [...this.#namespaces]
      : [...this.#namespaces].filter(([ns]) => ns === namespace);
    return list.map(([ns, s]) => one(ns, s.watched)).join("; ");
  }

  /** The store a namespace's Service reflector writes into (selector mode). */
  store(namespace: string, onChange: SelectionChange): ReflectorStore {
    const ns = this.#namespaces.get(namespace);
    if (!ns) throw new RangeError(`Namespace ${namespace} is not watched by this selection`);
    const update = (resourceVersion: string, relist: boolean) => {
      const before = ns.selected;
      ns.selected = new Set(ns.picked.values());
      const names = new Set<string>();
      for (const n of before) if (!ns.selected.has(n)) names.add(n);
      for (const n of ns.selected) if (!before.has(n)) names.add(n);
      onChange(namespace, { names, resourceVersion, relist });
      ns.resourceVersion = resourceVersion;
    };
    return {
      get synced() {
        return ns.synced;
      },
      replace: (items, rv) => {
        ns.picked.clear();
        for (const s of items) ns.picked.set(s.metadata?.uid ?? "", s.metadata?.name ?? "");
        ns.synced = true;
        update(rv, true);
      },
      apply: (type, item: KubeItem) => {
        const uid = item.metadata?.uid ?? "";
        if (type === "DELETED") ns.picked.delete(uid);
        else ns.picked.set(uid, item.metadata?.name ?? "");
        update(item.metadata?.resourceVersion ?? ns.resourceVersion, false);
      },
      touch: () => {},
    };
  }

  /** The last resourceVersion the Service watch of a namespace stored. */
  resourceVersion(namespace: string): string {
    return this.#namespaces.get(namespace)?.resourceVersion ?? "0";
  }
}
