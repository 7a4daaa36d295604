/**
 * One tenant of the history checker: a namespace of its own with the schedule's Services (those
 * in `PICKED` labelled for the selector sidecar), the clients that ask each of the run's
 * sidecars about it (every sidecar watches every tenant's namespace), and the loop that applies
 * the tenant's seeded changes. Deleting a Service also deletes its EndpointSlices, as the
 * garbage collector (not run by the test control plane) would.
 *
 * @module
 */
import {
  createPod,
  createService,
  deletePod,
  forceDeletePod,
  setPodReady,
} from "../cluster/fixtures.ts";
import { kube, kubeOk } from "../cluster/http.ts";
import type { EndpointSlice, KubeList } from "../cluster/types.ts";
import { sleep } from "../cluster/wait.ts";
import type { ClientSpec } from "./checker.ts";
import type { AnswerKind, Recorder } from "./recorder.ts";
import { type Change, prng, SERVICES } from "./schedule.ts";
import { type Mode, PICKED, SELECTOR_LABEL, type Sidecars } from "./sidecars.ts";
import { churnSse, keepAliveChurn, shortBlocks } from "./transient.ts";

/** Pause between two changes of a tenant, ms: random in this range (seeded). */
const CHANGE_GAP_MS = [300, 1_300] as const;

/** A terminating Pod keeps its endpoint this long: no kubelet ends it, a later change does. */
const TERMINATING_GRACE_S = 3600;

/** A running tenant. */
export interface Tenant {
  seed: number;
  namespace: string;
  clients: ClientSpec[];
  /** Changes applied, and those the API refused or could not take (e.g. during a fault). */
  applied: number;
  failed: number;
  /** Applies the next scheduled change (past the budget too); false when none is left. */
  step(): Promise<boolean>;
  /** Runs `budget` changes, or until `stopped()`; none while `paused()`. */
  run(gate: { paused: () => boolean; stopped: () => boolean }): Promise<void>;
}

/** Creates the tenant's Services (its namespace exists). */
export async function createServices(ns: string): Promise<void> {
  for (const s of SERVICES) await createService(ns, s, serviceOptions(s));
}

/** Starts the tenant's clients against the run's sidecars and returns the tenant. */
export function startTenant(
  ns: string,
  o: {
    seed: number;
    changes: Change[];
    budget: number;
    recorder: Recorder;
    sidecars: Sidecars;
    /** Every tenant's namespace, the first one's first: the streams of every Service. */
    namespaces: string[];
  },
): Tenant {
  const clients = startClients(ns, o.sidecars, o);
  const rand = prng(o.seed ^ 0xc4a9);
  let next = 0;
  const tenant: Tenant = {
    seed: o.seed,
    namespace: ns,
    clients,
    applied: 0,
    failed: 0,
    async step() {
      const change = o.changes[next++];
      if (!change) return false;
      try {
        await applyChange(ns, change);
        tenant.applied++;
      } catch {
        tenant.failed++;
      }
      return true;
    },
    async run(gate) {
      while (!gate.stopped()) {
        if (gate.paused()) {
          await sleep(50);
          continue;
        }
        if (next >= o.budget || !await tenant.step()) return;
        await sleep(CHANGE_GAP_MS[0] + rand() * (CHANGE_GAP_MS[1] - CHANGE_GAP_MS[0]));
      }
    },
  };
  return tenant;
}

function startClients(
  ns: string,
  sidecars: Sidecars,
  o: { recorder: Recorder; namespaces: string[]; seed: number },
): ClientSpec[] {
  const specs: ClientSpec[] = [];
  const first = ns === o.namespaces[0];
  const rec = o.recorder;
  const add = (mode: Mode, name: string, what: { kind: AnswerKind; subject: string }) => {
    const spec: ClientSpec = {
      name: `${ns}/${mode}:${name}`,
      sidecar: mode,
      mode,
      namespace: ns,
      ...what,
      polls: what.kind !== "sse",
    };
    if (what.subject === "*") spec.namespaces = o.namespaces;
    specs.push(spec);
    return { name: spec.name, url: sidecars.byMode[mode].process.url };
  };
  const [a, b, c] = SERVICES.map((x) => `${ns}/${x}`) as [string, string, string];
  const poll = (mode: Mode, subject: string) => {
    const s = add(mode, `poll ${subject}`, { kind: "service", subject });
    rec.poll(s.name, `${s.url}/v1/services/${subject}?state=all`, { kind: "service", subject });
  };
  const list = (mode: Mode) => {
    const s = add(mode, "/v1/services", { kind: "services", subject: ns });
    rec.poll(s.name, `${s.url}/v1/services`, { kind: "services", subject: ns });
  };
  const block = (mode: Mode, subject: string) => {
    const s = add(mode, `block ${subject}`, { kind: "service", subject });
    rec.block(s.name, `${s.url}/v1/services/${subject}?state=all`, subject);
  };
  const sse = (mode: Mode, subject: string) => {
    const s = add(mode, `sse ${subject}`, { kind: "sse", subject });
    const path = subject === "*" ? "/v1/watch" : `/v1/watch/${subject}`;
    rec.sse(s.name, `${s.url}${path}?state=all`, subject);
  };
  // The names sidecar's /endpoints serves the first Service named: the first tenant's svc-a.
  if (first) {
    const s = add("names", "/endpoints", { kind: "endpoints", subject: a });
    rec.poll(s.name, `${s.url}/endpoints`, { kind: "endpoints", subject: a });
  }
  poll("names", b);
  block("names", c);
  sse("names", a);
  list("all");
  poll("all", b);
  list("selector");
  poll("selector", b);
  // Not picked by the selector: 404 throughout, never a view.
  poll("selector", c);
  block("selector", a);
  sse("selector", a);
  // Streams of every Service of every namespace: once per run.
  if (first) {
    sse("all", "*");
    sse("selector", "*");
  }
  // Clients that come and go (seeded from the tenant's seed).
  if (first) {
    for (const [i, mode] of (["all", "selector"] as const).entries()) {
      const s = add(mode, "resuming sse *", { kind: "sse", subject: "*" });
      churnSse(rec, s.name, `${s.url}/v1/watch?state=all`, { subject: "*", seed: o.seed + i });
    }
  }
  {
    const s = add("names", `short blocks ${a}`, { kind: "service", subject: a });
    shortBlocks(rec, s.name, `${s.url}/v1/services/${a}?state=all`, { subject: a, seed: o.seed });
  }
  {
    const s = add("all", `keep-alive ${c}`, { kind: "service", subject: c });
    keepAliveChurn(rec, s.name, s.url, {
      path: `/v1/services/${c}?state=all`,
      subject: c,
      seed: o.seed ^ 0x4a11,
    });
  }
  return specs;
}

/** Makes one change through the API server; throws when the server refuses it. */
export async function applyChange(ns: string, change: Change): Promise<void> {
  const labels = { app: change.service };
  switch (change.kind) {
    case "addPod":
      await createPod(ns, change.pod, { labels, nodeName: `${ns}-node`, ready: change.ready });
      return;
    case "flipReady":
      await setPodReady(ns, change.pod, change.ready);
      return;
    case "terminatePod":
      await deletePod(ns, change.pod, { gracePeriodSeconds: TERMINATING_GRACE_S });
      return;
    case "removePod":
      await forceDeletePod(ns, change.pod);
      return;
    case "deleteSlice": {
      const slices = await slicesOf(ns, change.service);
      if (slices[0]) await deleteSlice(ns, slices[0]);
      return;
    }
    case "deleteService": {
      await kubeOk("DELETE", `/api/v1/namespaces/${ns}/services/${change.service}`);
      for (const slice of await slicesOf(ns, change.service)) await deleteSlice(ns, slice);
      return;
    }
    case "createService":
      await createService(ns, change.service, serviceOptions(change.service));
      return;
  }
}

function serviceOptions(name: string): { labels?: Record<string, string> } {
  return PICKED.includes(name) ? { labels: { ...SELECTOR_LABEL } } : {};
}

async function slicesOf(ns: string, service: string): Promise<EndpointSlice[]> {
  const selector = encodeURIComponent(`kubernetes.io/service-name=${service}`);
  const list = await kubeOk<KubeList<EndpointSlice>>(
    "GET",
    `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?labelSelector=${selector}`,
  );
  return list.items;
}

async function deleteSlice(ns: string, slice: EndpointSlice): Promise<void> {
  const res = await kube(
    "DELETE",
    `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/${slice.metadata.name}`,
  );
  if (res.status >= 300 && res.status !== 404) throw new Error(`DELETE slice: ${res.status}`);
}
