/**
 * One Service's merged endpoints, kept up to date slice by slice: a slice event re-merges only
 * the endpoints that slice touches (its old and new merge keys), not the whole Service, and says
 * whether the merged list changed, without serializing it. The list is always equal to
 * `mergeSlices` (lib/endpoints.ts) over the current slices (tests/unit/merged_service_test.ts checks this
 * over seeded random sequences); it is rebuilt, as a new array, only when it changed, so the
 * same array means the same endpoints.
 *
 * @module
 */
import type { V1EndpointSlice } from "@kubernetes/client-node";
import { compareKeys, endpointRank, type EndpointView, sliceEndpoints } from "./endpoints.ts";

/** One slice's endpoint under one merge key. */
interface Contribution {
  slice: string;
  view: EndpointView;
}

/** Re-sorting every key beats inserting them one by one past this share of the keys. */
const RESORT_SHARE = 0.25;

/** The one empty list: every Service without endpoints shows this very array, so that readers
 * can tell "unchanged" by identity. */
export const NO_ENDPOINTS: readonly EndpointView[] = Object.freeze([]);

/** The merged endpoints of one Service's slices, updated per slice. */
export class MergedService {
  /** Merge keys per slice name. */
  #slices = new Map<string, string[]>();
  /** Per merge key, what each slice has under it, by slice name. */
  #byKey = new Map<string, Contribution[]>();
  /** Per merge key, the endpoint the merged list shows (the {@linkcode winner}). */
  #winners = new Map<string, EndpointView>();
  /** Every merge key, sorted: the order of the merged list. */
  #sorted: string[] = [];
  #endpoints: readonly EndpointView[] = NO_ENDPOINTS;

  /** How many slices the Service has. */
  get size(): number {
    return this.#slices.size;
  }

  /** The merged list; the same array until a change. */
  get endpoints(): readonly EndpointView[] {
    return this.#endpoints;
  }

  /** Adds or replaces a slice (by name); true when the merged list changed. */
  set(slice: V1EndpointSlice): boolean {
    const name = slice.metadata?.name ?? "";
    return this.#update(name, sliceEndpoints(slice));
  }

  /** Removes a slice; true when the merged list changed. */
  delete(name: string): boolean {
    if (!this.#slices.has(name)) return false;
    return this.#update(name, undefined);
  }

  #update(name: string, next: Map<string, EndpointView> | undefined): boolean {
    const keys = new Set(this.#slices.get(name));
    const before = new Map<string, EndpointView | undefined>();
    for (const k of next?.keys() ?? []) keys.add(k);
    for (const k of keys) before.set(k, this.#winners.get(k));
    for (const k of keys) this.#contribute(k, name, next?.get(k));
    if (next) this.#slices.set(name, [...next.keys()]);
    else this.#slices.delete(name);
    const added: string[] = [], removed = new Set<string>(), replaced: string[] = [];
    for (const [k, old] of before) {
      const now = winner(this.#byKey.get(k));
      if (now) this.#winners.set(k, now);
      else this.#winners.delete(k);
      if (!old && now) added.push(k);
      else if (old && !now) removed.add(k);
      else if (old !== now && !sameEndpoint(old, now)) replaced.push(k);
    }
    if (!added.length && !removed.size && !replaced.length) return false;
    if (added.length || removed.size) {
      this.#resort(added, removed);
      this.#endpoints = this.#sorted.length
        ? this.#sorted.map((k) => this.#winners.get(k)!)
        : NO_ENDPOINTS;
      return true;
    }
    // Same keys, some endpoints changed: a copy of the list with those positions replaced, not a
    // walk over every key (a readiness flip in one slice of a 5,000-endpoint Service).
    const endpoints = this.#endpoints.slice();
    for (const k of replaced) endpoints[lowerBound(this.#sorted, k)] = this.#winners.get(k)!;
    this.#endpoints = endpoints;
    return true;
  }

  /** Sets (or, with no view, removes) what slice `name` has under key `k`. */
  #contribute(k: string, name: string, view: EndpointView | undefined): void {
    const list = this.#byKey.get(k) ?? [];
    const at = list.findIndex((c) => c.slice === name);
    if (at >= 0) list.splice(at, 1);
    if (view) {
      const pos = list.findIndex((c) => compareKeys(c.slice, name) > 0);
      list.splice(pos < 0 ? list.length : pos, 0, { slice: name, view });
    }
    if (list.length) this.#byKey.set(k, list);
    else this.#byKey.delete(k);
  }

  #resort(added: string[], removed: Set<string>): void {
    if (added.length + removed.size > this.#sorted.length * RESORT_SHARE) {
      this.#sorted = [...this.#byKey.keys()].sort(compareKeys);
      return;
    }
    const sorted = removed.size ? this.#sorted.filter((k) => !removed.has(k)) : [...this.#sorted];
    for (const k of added) sorted.splice(lowerBound(sorted, k), 0, k);
    this.#sorted = sorted;
  }
}

/** The endpoint a key shows: the best condition, on a tie the slice whose name sorts first
 * (contributions are kept in slice-name order), as {@linkcode mergeSlices} picks it. */
function winner(list: Contribution[] | undefined): EndpointView | undefined {
  if (!list) return undefined;
  let best = list[0]!.view;
  for (const c of list) if (endpointRank(c.view) > endpointRank(best)) best = c.view;
  return best;
}

/** Whether two endpoints of one merge key would serialize the same (what a reader of the view
 * can see). The key already holds the address type, the addresses and the ports. */
function sameEndpoint(a: EndpointView | undefined, b: EndpointView | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return a.ready === b.ready && a.serving === b.serving && a.terminating === b.terminating &&
    a.nodeName === b.nodeName && a.zone === b.zone && a.hostname === b.hostname &&
    JSON.stringify(a.targetRef) === JSON.stringify(b.targetRef) &&
    JSON.stringify(a.hints) === JSON.stringify(b.hints);
}

/** The first index of `sorted` whose key is not below `k`. */
function lowerBound(sorted: string[], k: string): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(sorted[mid]!, k) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
