/**
 * The cluster objects scenarios measure against, made once per run and shared: Services whose
 * Pods (with status written as a kubelet would) the EndpointSlice controller slices, and many
 * selector-less Services with hand-written slices. Every read the bench itself makes is
 * cluster-scoped, so that namespace-scoped EndpointSlice reads at the API server are the
 * sidecars' alone (bench/api_load.ts counts them).
 *
 * @module
 */
import {
  createEndpointSlice,
  createNamespace,
  createPods,
  createService,
} from "../tests/support/cluster/fixtures.ts";
import { kubeOk } from "../tests/support/cluster/http.ts";
import type { EndpointSlice, KubeList } from "../tests/support/cluster/types.ts";
import { waitFor } from "../tests/support/cluster/wait.ts";
import { type PodMount, podMount } from "../tests/support/sidecar.ts";
import type { Context } from "./_context.ts";
import type { PodCreation } from "./types.ts";
import { now, round } from "./util.ts";

/** The node every bench Pod is on. */
export const NODE = "bench-node";
/** Pod writes in flight: the API server keeps up on 2 cores, the controller follows. */
const POD_CONCURRENCY = 40;

/** A Service of Pods in its own namespace, with a service-account mount able to read it. */
export interface PodService {
  ns: string;
  service: string;
  mount: PodMount;
  /** The environment of a sidecar in a pod watching this Service by name. */
  env: Record<string, string>;
  creation: PodCreation;
}

/** The cluster-scoped path of a namespace's slices (of one Service). */
export function clusterSlicesPath(ns: string, service?: string): string {
  const q = new URLSearchParams({ fieldSelector: `metadata.namespace=${ns}` });
  if (service) q.set("labelSelector", `kubernetes.io/service-name=${service}`);
  return `/apis/discovery.k8s.io/v1/endpointslices?${q}`;
}

function memo<T>(ctx: Context, key: string, make: () => Promise<T>): Promise<T> {
  let p = ctx.fixtures.get(key) as Promise<T> | undefined;
  if (!p) ctx.fixtures.set(key, p = make());
  return p;
}

/** Service `name` with `pods` ready Pods in a new namespace; made once per run. */
export function podService(ctx: Context, name: string, pods: number): Promise<PodService> {
  return memo(ctx, `pods:${name}`, async () => {
    ctx.log(`fixture: Service ${name} with ${pods} Pods`);
    const ns = await createNamespace(`bench-${name}`);
    await createService(ns, name, { ports: [{ name: "http", port: 80, targetPort: 8080 }] });
    const t0 = now();
    await createPods(ns, pods, {
      labels: { app: name },
      nodeName: NODE,
      prefix: name,
      concurrency: POD_CONCURRENCY,
    });
    const seconds = (now() - t0) / 1000;
    await waitFor(async () => {
      const list = await kubeOk<KubeList<EndpointSlice>>("GET", clusterSlicesPath(ns, name));
      const ready = list.items.flatMap((s) => s.endpoints ?? [])
        .filter((e) => e.conditions?.ready !== false).length;
      return ready === pods;
    }, {
      timeoutMs: 300_000,
      intervalMs: 500,
      message: `${pods} ready endpoints of ${ns}/${name}`,
    });
    const mount = await podMount(ns);
    ctx.cleanups.push(() => mount.remove());
    const creation = {
      service: name,
      pods,
      concurrency: POD_CONCURRENCY,
      seconds: round(seconds, 1),
      perSecond: round(pods / seconds, 0),
      slicesReadyS: round((now() - t0) / 1000, 1),
    };
    ctx.log(
      `fixture: ${pods} Pods written in ${creation.seconds} s, sliced at ${creation.slicesReadyS} s`,
    );
    return {
      ns,
      service: name,
      mount,
      env: { ...mount.env, KUBERNETES_POD_DISCOVERY_SERVICE_NAME: name },
      creation,
    };
  });
}

/** Many selector-less Services of 3 endpoints, one hand-written slice each. */
export interface ManyServices {
  ns: string;
  mount: PodMount;
  names: string[];
}

/** A hand-written slice of `count` ready IPv4 endpoints numbered from `first`. */
export function handSlice(ns: string, service: string, name: string, first: number, count: number) {
  const ip = (i: number) => `10.${100 + ((i >> 16) & 127)}.${(i >> 8) & 255}.${i & 255}`;
  return {
    metadata: {
      name,
      labels: {
        "kubernetes.io/service-name": service,
        "endpointslice.kubernetes.io/managed-by": "bench.kubernetes-pod-discovery",
      },
    },
    addressType: "IPv4",
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    endpoints: Array.from({ length: count }, (_, k) => ({
      addresses: [ip(first + k + 1)],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: NODE,
      targetRef: { kind: "Pod", name: `${service}-${k}`, namespace: ns },
    })),
  };
}

/** `count` Services svc-0000… in one namespace; made once per run. */
export function manyServices(ctx: Context, count: number): Promise<ManyServices> {
  return memo(ctx, `many:${count}`, async () => {
    ctx.log(`fixture: ${count} selector-less Services with one hand-written slice each`);
    const ns = await createNamespace("bench-many");
    const names = Array.from({ length: count }, (_, i) => `svc-${String(i).padStart(4, "0")}`);
    await inParallel(names, 20, async (name, i) => {
      await createService(ns, name, { selector: null });
      await createEndpointSlice(ns, handSlice(ns, name, `${name}-000`, i * 3, 3));
    });
    const mount = await podMount(ns);
    ctx.cleanups.push(() => mount.remove());
    return { ns, mount, names };
  });
}

/** Runs `fn` over the items with at most `concurrency` at a time. */
export async function inParallel<T>(
  items: T[],
  concurrency: number,
  fn: (t: T, i: number) => unknown,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** Count the ready addresses of an Endpoints body. */
export function countAddresses(text: string): number {
  const ep = JSON.parse(text) as { subsets?: { addresses?: unknown[] }[] };
  return (ep.subsets ?? []).reduce((a, s) => a + (s.addresses?.length ?? 0), 0);
}
