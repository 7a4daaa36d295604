/**
 * One Service's endpoints at one point in time ({@linkcode ServiceView}), immutable, with the
 * serialized v1 Endpoints body made once, and the one count of ready, serving and terminating endpoints
 * that the API and the metrics both read.
 *
 * @module
 */
import { type EndpointView, renderV1Endpoints } from "./endpoints.ts";

/** Process-wide: every view gets a generation no other view of this process has. */
let nextGeneration = 1;

/** One Service's endpoints at one point in time. Never mutated: a change makes a new view. */
export class ServiceView {
  /** Namespace of the Service. */
  readonly namespace: string;
  /** Name of the Service. */
  readonly name: string;
  /** resourceVersion of the change (or list) that made this view. */
  readonly resourceVersion: string;
  /** Change index: the resourceVersion as a number, unless that would go backwards. */
  readonly index: number;
  /** Unique per view within the process: what an ETag of this view is made from. */
  readonly generation: number;
  /** When this view was made (the Service's endpoints last changed), ms since the epoch. */
  readonly changedAt: number;
  /** The merged, de-duplicated endpoints. */
  readonly endpoints: readonly EndpointView[];
  /** True for a tombstone: the Service left the view (no longer selected, or gone), at `index`;
   * listeners get it once, readers never see it as a current view. */
  readonly removed: boolean;
  #endpointsBody?: string;

  /** Makes a view; `index` defaults to the number in `resourceVersion`. */
  constructor(
    key: { namespace: string; name: string },
    state: {
      resourceVersion: string;
      endpoints: readonly EndpointView[];
      index?: number;
      removed?: boolean;
      /** When it was made; default now (a view derived from another keeps the other's time). */
      changedAt?: number;
    },
  ) {
    this.namespace = key.namespace;
    this.name = key.name;
    this.resourceVersion = state.resourceVersion;
    this.index = state.index ?? (Number(state.resourceVersion) || 0);
    this.generation = nextGeneration++;
    this.endpoints = state.endpoints;
    this.removed = state.removed ?? false;
    this.changedAt = state.changedAt ?? Date.now();
  }

  /** The body in the Kubernetes v1 Endpoints shape (what `/endpoints` serves), serialized on
   * first use and kept. */
  get endpointsBody(): string {
    return this.#endpointsBody ??= JSON.stringify(renderV1Endpoints(
      { name: this.name, namespace: this.namespace, resourceVersion: this.resourceVersion },
      this.endpoints,
    ));
  }
}

/** How many endpoints are in each state. */
export interface EndpointCounts {
  ready: number;
  serving: number;
  terminating: number;
  total: number;
}

/** Counts ready, serving and terminating endpoints: the one count /v1/services and metrics use. */
export function countEndpoints(endpoints: readonly EndpointView[]): EndpointCounts {
  const out = { ready: 0, serving: 0, terminating: 0, total: endpoints.length };
  for (const e of endpoints) {
    if (e.ready) out.ready++;
    if (e.serving) out.serving++;
    if (e.terminating) out.terminating++;
  }
  return out;
}
