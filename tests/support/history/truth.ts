/**
 * The history checker's truth: its own list and watch of EndpointSlices, straight on the API
 * server (never through a fault proxy), kept as a timeline per Service of (resourceVersion,
 * merged endpoints, when it was seen). The merge is lib/endpoints.ts' `mergeSlices` (unit-tested
 * on its own); what is checked is the history. A broken watch resumes from the last
 * resourceVersion seen (events and bookmarks); a 410 relists and records the difference as one
 * step at the list's resourceVersion, and counts it (`coarsened`), because changes made in that
 * gap would be invisible: the checker pauses changes around compaction so that count stays 0.
 * Beside the slices, it watches each namespace's Services the same way and keeps, per Service,
 * whether the selector sidecar's label selector picks it (it exists and carries the label).
 *
 * @module
 */
import type { V1EndpointSlice } from "@kubernetes/client-node";
import { type EndpointView, mergeSlices } from "../../../lib/endpoints.ts";
import { kubeOk } from "../cluster/http.ts";
import type { KubeList } from "../cluster/types.ts";
import { sleep } from "../cluster/wait.ts";
import { openWatch, type WatchStream } from "../cluster/watch.ts";
import { SELECTOR_LABEL } from "./sidecars.ts";

/** The label that ties an EndpointSlice to its Service. */
const SERVICE_LABEL = "kubernetes.io/service-name";

/** A watch read waits this long before checking whether it should stop. */
const READ_SLICE_MS = 2_000;
/** Retry period while the API server cannot be reached (it costs a refused connection). */
const RETRY_MS = 300;

/** One Service's state from one resourceVersion on; `endpoints` undefined: it has no slice. */
export interface TruthPoint {
  /** The resourceVersion this state starts at. */
  rv: number;
  /** Merged endpoints; undefined when the Service has no EndpointSlice at all. */
  endpoints: EndpointView[] | undefined;
  /** When the checker's watch saw it (ms, performance.now()). */
  seenAt: number;
}

/** Whether the selector picks a Service, from one resourceVersion on. */
export interface PickPoint {
  rv: number;
  picked: boolean;
  /** When the checker's watch saw it (ms, performance.now()). */
  seenAt: number;
}

interface NamespaceTruth {
  slices: Map<string, V1EndpointSlice>;
  rv: string;
}

interface ServiceObject {
  metadata?: { name?: string; resourceVersion?: string; labels?: Record<string, string> };
}

/** One watched resource of one namespace: its path, how to list it and apply an event. */
interface Follow<T> {
  path: string;
  state: { rv: string };
  list(): Promise<void>;
  apply(type: string, object: T): void;
}

/** The truth of a few namespaces, from the checker's own watches. */
export class Truth {
  #namespaces = new Map<string, NamespaceTruth>();
  #timelines = new Map<string, TruthPoint[]>();
  #stopped = false;
  #points = 0;
  #loops: Promise<void>[] = [];
  #watches = new Set<WatchStream<unknown>>();
  #picks = new Map<string, PickPoint[]>();
  #services = new Map<string, { rv: string; names: Set<string> }>();
  /** Events applied (all namespaces). */
  events = 0;
  /** Relists after a 410 whose list differed from the state held: intermediate states lost. */
  coarsened = 0;
  /** Relists after a 410. */
  relists = 0;
  /** When the last state change was seen (ms, performance.now()). */
  lastChangeAt = 0;
  #lastChangeIn = new Map<string, number>();
  /** The newest resourceVersion applied, any namespace. */
  rv = 0;
  /** The resourceVersion of the first lists: no answer can show an older state. */
  startRv = 0;

  /** Lists each namespace, then watches it until {@linkcode Truth.stop}. */
  async start(namespaces: string[]): Promise<void> {
    for (const ns of namespaces) {
      const state: NamespaceTruth = { slices: new Map(), rv: "0" };
      this.#namespaces.set(ns, state);
      await this.#list(ns, state);
      this.#loops.push(this.#run<V1EndpointSlice>({
        path: `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
        state,
        list: () => this.#list(ns, state),
        apply: (type, slice) => this.#apply(ns, state, type, slice),
      }));
      const services = { rv: "0", names: new Set<string>() };
      this.#services.set(ns, services);
      await this.#listServices(ns, services);
      this.#loops.push(this.#run<ServiceObject>({
        path: `/api/v1/namespaces/${ns}/services`,
        state: services,
        list: () => this.#listServices(ns, services),
        apply: (type, svc) => this.#applyService(ns, services, type, svc),
      }));
    }
    this.startRv = this.rv;
  }

  /** Stops the watches. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const w of this.#watches) await w.close();
    await Promise.all(this.#loops);
  }

  /** The timeline of `namespace/name`, oldest first (empty if it never had a slice). */
  timeline(namespace: string, name: string): TruthPoint[] {
    return this.#timelines.get(`${namespace}/${name}`) ?? [];
  }

  /** Every Service key (`namespace/name`) of a namespace that ever had a slice. */
  services(namespace: string): string[] {
    return [...this.#timelines.keys()].filter((k) => k.startsWith(`${namespace}/`));
  }

  /** Whether the selector picked `namespace/name`, oldest first. */
  picked(namespace: string, name: string): PickPoint[] {
    return this.#picks.get(`${namespace}/${name}`) ?? [];
  }

  /** When the last state change in `namespace` was seen (ms, performance.now(); 0: none). */
  lastChangeIn(namespace: string): number {
    return this.#lastChangeIn.get(namespace) ?? 0;
  }

  /** Resolves once no state has changed for `quietMs` (the controllers are done). */
  async settle(quietMs: number, timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() - this.lastChangeAt < quietMs && performance.now() < deadline) {
      await sleep(100);
    }
  }

  async #list(ns: string, state: NamespaceTruth): Promise<void> {
    const list = await kubeOk<KubeList<V1EndpointSlice>>(
      "GET",
      `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
    );
    const rv = list.metadata.resourceVersion ?? "0";
    const before = state.slices;
    state.slices = new Map(list.items.map((s) => [s.metadata!.name!, s]));
    state.rv = rv;
    this.rv = Math.max(this.rv, Number(rv));
    const affected = new Set([...serviceNames(before.values()), ...serviceNames(list.items)]);
    for (const name of affected) this.#record(ns, state, name, Number(rv));
  }

  async #run<T>(f: Follow<T>): Promise<void> {
    const { state } = f;
    while (!this.#stopped) {
      let watch: WatchStream<T> | undefined;
      try {
        watch = await openWatch<T>(
          `${f.path}?resourceVersion=${state.rv}&allowWatchBookmarks=true&timeoutSeconds=3600`,
        );
        this.#watches.add(watch as WatchStream<unknown>);
        while (!this.#stopped) {
          const event = await watch.next({ timeoutMs: READ_SLICE_MS }).catch((e: Error) => {
            if (/timed out/.test(e.message)) return null;
            throw e;
          });
          if (event === null) continue;
          if (event === undefined) break;
          if (event.type === "ERROR") {
            throw Object.assign(new Error("watch ERROR event"), { status: event.object });
          }
          f.apply(event.type, event.object);
        }
      } catch (e) {
        if (this.#stopped) break;
        if (isGone(e)) {
          this.relists++;
          await this.#relist(f);
          continue;
        }
        await sleep(RETRY_MS);
      } finally {
        if (watch) {
          this.#watches.delete(watch as WatchStream<unknown>);
          await watch.close();
        }
      }
    }
  }

  async #relist<T>(f: Follow<T>): Promise<void> {
    while (!this.#stopped) {
      try {
        const points = this.#points;
        await f.list();
        if (this.#points !== points) this.coarsened++;
        return;
      } catch {
        await sleep(RETRY_MS);
      }
    }
  }

  #apply(ns: string, state: NamespaceTruth, type: string, slice: V1EndpointSlice): void {
    const rv = slice.metadata?.resourceVersion ?? state.rv;
    state.rv = rv;
    if (type === "BOOKMARK") return;
    this.events++;
    const name = slice.metadata!.name!;
    const old = state.slices.get(name);
    if (type === "DELETED") state.slices.delete(name);
    else state.slices.set(name, slice);
    const affected = new Set([...serviceNames(old ? [old] : []), ...serviceNames([slice])]);
    for (const svc of affected) this.#record(ns, state, svc, Number(rv));
  }

  #record(ns: string, state: NamespaceTruth, name: string, rv: number): void {
    const mine = [...state.slices.values()].filter((s) =>
      s.metadata?.labels?.[SERVICE_LABEL] === name
    );
    const endpoints = mine.length ? mergeSlices(mine) : undefined;
    const key = `${ns}/${name}`;
    let line = this.#timelines.get(key);
    if (!line) this.#timelines.set(key, line = []);
    const last = line.at(-1);
    this.rv = Math.max(this.rv, rv);
    if (last && JSON.stringify(last.endpoints) === JSON.stringify(endpoints)) return;
    const seenAt = performance.now();
    this.lastChangeAt = seenAt;
    this.#lastChangeIn.set(ns, seenAt);
    line.push({ rv, endpoints, seenAt });
    this.#points++;
  }

  async #listServices(ns: string, s: { rv: string; names: Set<string> }): Promise<void> {
    const list = await kubeOk<KubeList<ServiceObject>>("GET", `/api/v1/namespaces/${ns}/services`);
    const rv = list.metadata.resourceVersion ?? "0";
    s.rv = rv;
    this.rv = Math.max(this.rv, Number(rv));
    const now = new Set(list.items.filter(isPicked).map((x) => x.metadata!.name!));
    for (const name of new Set([...s.names, ...now])) {
      this.#pick(ns, name, now.has(name), Number(rv));
    }
    s.names = now;
  }

  #applyService(
    ns: string,
    s: { rv: string; names: Set<string> },
    type: string,
    svc: ServiceObject,
  ): void {
    const rv = svc.metadata?.resourceVersion ?? s.rv;
    s.rv = rv;
    if (type === "BOOKMARK") return;
    this.events++;
    const name = svc.metadata!.name!;
    const picked = type !== "DELETED" && isPicked(svc);
    if (picked) s.names.add(name);
    else s.names.delete(name);
    this.#pick(ns, name, picked, Number(rv));
  }

  #pick(ns: string, name: string, picked: boolean, rv: number): void {
    const key = `${ns}/${name}`;
    let line = this.#picks.get(key);
    if (!line) this.#picks.set(key, line = []);
    this.rv = Math.max(this.rv, rv);
    if (line.at(-1)?.picked === picked) return;
    const seenAt = performance.now();
    this.lastChangeAt = seenAt;
    this.#lastChangeIn.set(ns, seenAt);
    line.push({ rv, picked, seenAt });
    this.#points++;
  }
}

function isPicked(svc: ServiceObject): boolean {
  const labels = svc.metadata?.labels ?? {};
  return Object.entries(SELECTOR_LABEL).every(([k, v]) => labels[k] === v);
}

function* serviceNames(slices: Iterable<V1EndpointSlice>): Iterable<string> {
  for (const s of slices) {
    const name = s.metadata?.labels?.[SERVICE_LABEL];
    if (name) yield name;
  }
}

/** A 410 Gone, as the status of a watch request or the Status of an ERROR event. */
function isGone(e: unknown): boolean {
  if (!e || typeof e !== "object") return false;
  const o = e as { status?: unknown };
  if (o.status === 410) return true;
  const s = o.status as { code?: number; reason?: string } | undefined;
  return typeof s === "object" && s !== null && (s.code === 410 || s.reason === "Expired");
}
