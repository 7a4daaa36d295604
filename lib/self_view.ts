/**
 * This Pod in each Service view: which endpoints are its own, its state, and the view without
 * them that `?exclude=self` serves. The work is done once per view, as the cache makes it (one
 * walk over its endpoints), never per request: a request without `exclude=self` reads the marks
 * from its memoized body, one with it reads the view without this Pod from a memo.
 *
 * The view without this Pod ("peers") is a view of its own, with the index and time of the last
 * change of anything but this Pod: a change of this Pod alone keeps the previous peers view, so
 * its ETag and index do not move, and {@linkcode SelfViews.excluded} (the cache as an
 * `exclude=self` client sees it) announces no change. An endpoint whose settings and the view
 * disagree on (lib/self.ts) is logged once at warn, and is still this Pod, never a peer.
 *
 * @module
 */
import type { EndpointCache, ViewSource } from "./cache.ts";
import { ChangeFeed } from "./change_feed.ts";
import type { EndpointView } from "./endpoints.ts";
import type { Logger } from "./log.ts";
import {
  type EndpointMatch,
  isSelfMatch,
  knowsSelf,
  matchEndpoint,
  type PodIdentity,
  type SelfMatcher,
  selfMatcher,
  type SelfState,
  selfState,
} from "./self.ts";
import { ServiceView } from "./service_view.ts";

/** This Pod in one view. */
export interface SelfInfo {
  /** This Pod's state in the Service. */
  readonly state: SelfState;
  /** The endpoints that are this Pod. */
  readonly endpoints: ReadonlySet<EndpointView>;
  /** The view without this Pod: the view itself when it has none of its endpoints and had none
   * before, else the previous peers view when only this Pod changed. */
  readonly peers: ServiceView;
}

const NONE: ReadonlySet<EndpointView> = new Set();

/** A view, this Pod in it, and the positions of this Pod's endpoints in its list. */
interface Latest {
  view: ServiceView;
  info: SelfInfo;
  at: number[];
}

/** Options for {@linkcode SelfViews}. */
export interface SelfViewsOptions {
  /** Who this Pod is; without a name and namespace or an IP nothing is marked. */
  identity: PodIdentity;
  /** Where a contradicting identity is reported (once per kind). */
  log?: Logger;
}

/** This Pod in every view of a cache, computed as the cache changes. */
export class SelfViews {
  #cache: EndpointCache;
  #matcher: SelfMatcher;
  #log?: Logger;
  #memo = new WeakMap<ServiceView, SelfInfo>();
  /** The latest view's info per Service: what the next view is compared with. */
  #latest = new Map<string, Latest>();
  /** The peers view last announced per Service. */
  #announced = new Map<string, ServiceView>();
  #feed = new ChangeFeed<ServiceView[]>();
  #warned = new Set<EndpointMatch>();
  #excluded: ViewSource;

  /** Follows `cache` for the life of the process; subscribe before the readers of the cache. */
  constructor(cache: EndpointCache, options: SelfViewsOptions) {
    this.#cache = cache;
    this.#matcher = selfMatcher(options.identity);
    this.#log = options.log;
    cache.subscribe((changed) => this.#observe(changed));
    const of = (v: ServiceView | undefined) => v && this.of(v).peers;
    const feed = this.#feed;
    this.#excluded = {
      get ready() {
        return cache.ready;
      },
      get index() {
        return cache.index;
      },
      view: (ns, name) => of(cache.view(ns, name)),
      views: () => cache.views().map((v) => this.of(v).peers),
      subscribe: (listener) => feed.subscribe(listener),
      synced: (namespace) => cache.synced(namespace),
      onSynced: (listener) => cache.onSynced(listener),
    };
  }

  /** Whether this Pod can be told at all (name and namespace, or an IP). */
  get known(): boolean {
    return knowsSelf(this.#matcher);
  }

  /** The cache as a client with `exclude=self` sees it: views without this Pod, and changes
   * only when something other than this Pod changed. */
  get excluded(): ViewSource {
    return this.#excluded;
  }

  /** This Pod in `view`; computed once per view. */
  of(view: ServiceView): SelfInfo {
    const memo = this.#memo.get(view);
    if (memo) return memo;
    const key = `${view.namespace}/${view.name}`;
    const last = this.#latest.get(key);
    const before = last && last.view.index <= view.index ? last : undefined;
    const found = this.#compute(view, before);
    this.#memo.set(view, found.info);
    if (view.removed) this.#latest.delete(key);
    else if (!last || before) this.#latest.set(key, found);
    return found.info;
  }

  #observe(changed: ServiceView[]): void {
    const moved: ServiceView[] = [];
    for (const v of changed) {
      const key = `${v.namespace}/${v.name}`;
      const peers = this.of(v).peers;
      if (this.#announced.get(key) === peers) continue;
      if (v.removed) this.#announced.delete(key);
      else this.#announced.set(key, peers);
      moved.push(peers);
    }
    if (moved.length) this.#feed.publish(moved);
  }

  #compute(view: ServiceView, before: Latest | undefined): Latest {
    const none = (state: SelfState): Latest => ({
      view,
      info: { state, endpoints: NONE, peers: view },
      at: [],
    });
    if (view.removed) return none("not-listed");
    if (!this.known) return none("unknown");
    // The merge keeps the objects of endpoints a change did not touch, in key order: with as
    // many endpoints as before, only the positions whose object changed need a look.
    const incremental = before !== undefined &&
      before.view.endpoints.length === view.endpoints.length;
    const own = new Set<EndpointView>();
    const at: number[] = [];
    let peersMoved = !incremental;
    const b = view.endpoints, a = incremental ? before.view.endpoints : undefined;
    // Positions of this Pod's endpoints in the list before, walked alongside.
    const was = incremental ? before.at : [];
    let k = 0;
    for (let i = 0; i < b.length; i++) {
      const e = b[i]!;
      const wasSelf = k < was.length && was[k] === i;
      if (wasSelf) k++;
      if (a !== undefined && e === a[i]) {
        if (wasSelf) {
          own.add(e);
          at.push(i);
        }
        continue;
      }
      const match = matchEndpoint(e, this.#matcher, view.namespace);
      if (isSelfMatch(match)) {
        own.add(e);
        at.push(i);
        if (match !== "self") this.#contradiction(match, view, e);
      } else peersMoved = true;
      // A peer replaced (by a peer or by this Pod) is a change of peers.
      if (a !== undefined && !wasSelf) peersMoved = true;
    }
    const endpoints = own.size ? own : NONE;
    const state = selfState(endpoints);
    if (!peersMoved) return { view, info: { state, endpoints, peers: before!.info.peers }, at };
    const rest = own.size ? without(b, at) : b;
    // Without this Pod now and before: the new view is a change of peers (the cache makes a
    // view only when its endpoints changed); so is a peer replaced in place. Else compare what
    // is left.
    if (!incremental && before && (own.size || before.info.endpoints.size)) {
      if (samePeers(before.info.peers.endpoints, rest)) {
        return { view, info: { state, endpoints, peers: before.info.peers }, at };
      }
    }
    const peers = own.size === 0 ? view : new ServiceView(view, {
      resourceVersion: view.resourceVersion,
      endpoints: rest,
      index: view.index,
      changedAt: view.changedAt,
    });
    return { view, info: { state, endpoints, peers }, at };
  }

  /** Logs a contradiction once per kind for the life of the process. */
  #contradiction(match: EndpointMatch, view: ServiceView, e: EndpointView): void {
    if (this.#warned.has(match)) return;
    this.#warned.add(match);
    const id = this.#matcher.identity;
    this.#log?.log("warn", "pod identity contradicts an endpoint", {
      service: `${view.namespace}/${view.name}`,
      endpoint: { addresses: e.addresses, targetRef: e.targetRef?.name },
      identity: { name: id.name, namespace: id.namespace, ips: id.ips },
      note: match === "self-other-address"
        ? "the endpoint of this Pod carries an address that is not in the configured Pod IPs; " +
          "it is treated as this Pod: check POD_IPS (downward API status.podIPs)"
        : "an endpoint of another Pod carries a configured Pod IP; it is treated as this Pod, " +
          "not as a peer: check POD_NAME and POD_IPS (downward API metadata.name, status.podIPs)",
    });
  }
}

/** `list` without the positions `at` (ascending): copies of the runs between them. */
function without(list: readonly EndpointView[], at: number[]): EndpointView[] {
  const runs: EndpointView[][] = [];
  let from = 0;
  for (const i of at) {
    runs.push(list.slice(from, i));
    from = i + 1;
  }
  runs.push(list.slice(from));
  return runs.length === 1 ? runs[0]! : runs[0]!.concat(...runs.slice(1));
}

/** Whether two peer lists (sorted by merge key, as the views are) show the same endpoints. */
function samePeers(a: readonly EndpointView[], b: readonly EndpointView[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameEndpoint(a[i]!, b[i]!)) return false;
  return true;
}

/** Whether two endpoints serialize the same (what a reader can see). */
export function sameEndpoint(a: EndpointView, b: EndpointView): boolean {
  if (a === b) return true;
  return a.addressType === b.addressType && a.ready === b.ready && a.serving === b.serving &&
    a.terminating === b.terminating && a.nodeName === b.nodeName && a.zone === b.zone &&
    a.hostname === b.hostname && a.addresses.join() === b.addresses.join() &&
    (a.ports === b.ports || JSON.stringify(a.ports) === JSON.stringify(b.ports)) &&
    JSON.stringify(a.targetRef) === JSON.stringify(b.targetRef) &&
    JSON.stringify(a.hints) === JSON.stringify(b.hints);
}
