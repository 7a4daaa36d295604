/**
 * One tenant of the history checker: a namespace of its own with the schedule's Services, a
 * fault proxy, two sidecars reaching the API server through it (one watching the Services by
 * name, one watching every Service, where Services can leave), the clients that ask them, and
 * the loop that applies the tenant's seeded changes. Deleting a Service also deletes its
 * EndpointSlices, as the garbage collector (not run by the test control plane) would.
 *
 * @module
 */
import { createProxy, type FaultProxy } from "../cluster/faults.ts";
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
import type { Recorder } from "./recorder.ts";
import { type Change, prng, SERVICES } from "./schedule.ts";
import { type PodMount, podMount, type SidecarProcess, spawnSidecar } from "../sidecar.ts";

/** Pause between two changes of a tenant, ms: random in this range (seeded). */
const CHANGE_GAP_MS = [300, 1_300] as const;

/** A terminating Pod keeps its endpoint this long: no kubelet ends it, a later change does. */
const TERMINATING_GRACE_S = 3600;

/** A running tenant. */
export interface Tenant {
  seed: number;
  namespace: string;
  proxy: FaultProxy;
  /** The sidecar watching Services by name, then the one watching every Service. */
  sidecars: SidecarProcess[];
  clients: ClientSpec[];
  /** Changes applied, and those the API refused or could not take (e.g. during a fault). */
  applied: number;
  failed: number;
  /** Applies the next scheduled change (past the budget too); false when none is left. */
  step(): Promise<boolean>;
  /** Runs `budget` changes, or until `stopped()`; none while `paused()`. */
  run(gate: { paused: () => boolean; stopped: () => boolean }): Promise<void>;
  close(): Promise<void>;
}

/** Creates the tenant's namespace, Services, proxy and sidecars, and starts its clients. */
export async function startTenant(
  ns: string,
  o: { seed: number; changes: Change[]; budget: number; recorder: Recorder },
): Promise<Tenant> {
  for (const s of SERVICES) await createService(ns, s);
  const proxy = await createProxy();
  const mount: PodMount = await podMount(ns, { server: proxy.url });
  const names = await spawnSidecar({
    env: mount.env,
    // Debug: every retry is logged, not only the first of a kind (the checker shows them).
    args: [`--service-name=${SERVICES.join(",")}`, "--log-level=debug"],
  });
  const all = await spawnSidecar({
    env: mount.env,
    args: ["--all-services", `--namespaces=${ns}`, "--log-level=debug"],
  });
  const sidecars = [names, all];
  for (const s of sidecars) {
    while ((await s.request("/readyz")).status !== 200) await sleep(100);
  }
  const clients = startClients(ns, { names, all }, o.recorder);
  const rand = prng(o.seed ^ 0xc4a9);
  let next = 0;
  const tenant: Tenant = {
    seed: o.seed,
    namespace: ns,
    proxy,
    sidecars,
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
    async close() {
      for (const s of sidecars) await s.stop();
      await mount.remove();
      await proxy.close();
    },
  };
  return tenant;
}

function startClients(
  ns: string,
  s: { names: SidecarProcess; all: SidecarProcess },
  recorder: Recorder,
): ClientSpec[] {
  const specs: ClientSpec[] = [];
  const add = (
    spec: Omit<ClientSpec, "namespace" | "polls" | "name"> & { name: string },
    start: (name: string) => void,
  ) => {
    const name = `${ns}/${spec.name}`;
    specs.push({ ...spec, name, namespace: ns, polls: spec.kind !== "sse" });
    start(name);
  };
  const [a, b, c] = SERVICES.map((x) => `${ns}/${x}`) as [string, string, string];
  const n = { sidecar: `${ns}/names`, mode: "names" as const };
  const w = { sidecar: `${ns}/all`, mode: "all" as const };
  add(
    { ...n, name: "names:/endpoints", kind: "endpoints", subject: a },
    (name) => recorder.poll(name, `${s.names.url}/endpoints`, { kind: "endpoints", subject: a }),
  );
  add(
    { ...n, name: "names:poll svc-b", kind: "service", subject: b },
    (name) =>
      recorder.poll(name, `${s.names.url}/v1/services/${b}?state=all`, {
        kind: "service",
        subject: b,
      }),
  );
  add(
    { ...n, name: "names:block svc-c", kind: "service", subject: c },
    (name) => recorder.block(name, `${s.names.url}/v1/services/${c}?state=all`, c),
  );
  add(
    { ...n, name: "names:sse svc-a", kind: "sse", subject: a },
    (name) => recorder.sse(name, `${s.names.url}/v1/watch/${a}?state=all`, a),
  );
  add(
    { ...w, name: "all:/v1/services", kind: "services", subject: "*" },
    (name) => recorder.poll(name, `${s.all.url}/v1/services`, { kind: "services", subject: ns }),
  );
  add(
    { ...w, name: "all:poll svc-b", kind: "service", subject: b },
    (name) =>
      recorder.poll(name, `${s.all.url}/v1/services/${b}?state=all`, {
        kind: "service",
        subject: b,
      }),
  );
  add(
    { ...w, name: "all:sse", kind: "sse", subject: "*" },
    (name) => recorder.sse(name, `${s.all.url}/v1/watch?state=all`, "*"),
  );
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
      await createService(ns, change.service);
      return;
  }
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
