/**
 * The objects a control-plane test needs: namespaces, Services, Nodes, Pods with a written
 * status (ready or not, deleted or force-deleted) and hand-written EndpointSlices, plus waiting
 * for the slices the controller writes.
 *
 * @module
 */

import { kube, KubeError, kubeOk } from "./http.ts";
import type { EndpointSlice, KubeList, Pod, Service, ServicePort } from "./types.ts";
import { uniqueName, waitFor, type WaitOptions } from "./wait.ts";

/**
 * Creates a namespace `${prefix}-${random}` and waits until its ServiceAccount "default" exists
 * (Pod admission needs it); returns its name.
 */
export async function createNamespace(prefix: string): Promise<string> {
  const name = uniqueName(prefix);
  await kubeOk("POST", "/api/v1/namespaces", {
    body: { apiVersion: "v1", kind: "Namespace", metadata: { name } },
  });
  await waitFor(
    async () =>
      (await kube("GET", `/api/v1/namespaces/${name}/serviceaccounts/default`)).status === 200,
    { message: `ServiceAccount ${name}/default` },
  );
  return name;
}

/** Options of {@linkcode createService}. */
export interface ServiceOptions {
  /** Ports (default one TCP port "http" 80 -> 8080). */
  ports?: ServicePort[];
  /** Pod selector (default {app: name}); null makes a Service without selector. */
  selector?: Record<string, string> | null;
  /** e.g. ["IPv4"], ["IPv6"], ["IPv4", "IPv6"]. */
  ipFamilies?: string[];
  /** "SingleStack", "PreferDualStack" or "RequireDualStack". */
  ipFamilyPolicy?: string;
  /** Service type (default ClusterIP). */
  type?: string;
  /** "None" for a headless Service. */
  clusterIP?: string;
  /** Publish endpoints of Pods that are not ready. */
  publishNotReadyAddresses?: boolean;
  /** Service labels. */
  labels?: Record<string, string>;
}

/** Creates a Service and returns it as the server stored it. */
export function createService(
  ns: string,
  name: string,
  options: ServiceOptions = {},
): Promise<Service> {
  const spec: Service["spec"] = {
    ports: (options.ports ?? [{ name: "http", port: 80, targetPort: 8080 }]).map((p) => ({
      protocol: "TCP",
      ...p,
    })),
  };
  const selector = options.selector === undefined ? { app: name } : options.selector;
  if (selector) spec.selector = selector;
  if (options.ipFamilies) spec.ipFamilies = options.ipFamilies;
  if (options.ipFamilyPolicy) spec.ipFamilyPolicy = options.ipFamilyPolicy;
  if (options.type) spec.type = options.type;
  if (options.clusterIP) spec.clusterIP = options.clusterIP;
  if (options.publishNotReadyAddresses !== undefined) {
    spec.publishNotReadyAddresses = options.publishNotReadyAddresses;
  }
  return kubeOk<Service>("POST", `/api/v1/namespaces/${ns}/services`, {
    body: {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, labels: options.labels },
      spec,
    },
  });
}

const knownNodes = new Set<string>();

/**
 * Creates a Node labelled with topology zone and region; a Node that exists is relabelled (409 is
 * fine). Nodes are cluster-scoped: use unique names.
 */
export async function createNode(
  name: string,
  options: { zone?: string; region?: string } = {},
): Promise<void> {
  const labels: Record<string, string> = { "kubernetes.io/hostname": name };
  if (options.zone) labels["topology.kubernetes.io/zone"] = options.zone;
  if (options.region) labels["topology.kubernetes.io/region"] = options.region;
  const res = await kube("POST", "/api/v1/nodes", {
    body: { apiVersion: "v1", kind: "Node", metadata: { name, labels } },
  });
  if (res.status === 409) {
    if (options.zone || options.region) {
      await kubeOk("PATCH", `/api/v1/nodes/${name}`, { body: { metadata: { labels } } });
    }
  } else if (res.status >= 300) {
    throw new KubeError(`POST /api/v1/nodes (${name})`, res);
  }
  knownNodes.add(name);
}

/** Options of {@linkcode createPod}. */
export interface PodOptions {
  /** Pod labels (the Service selector matches these). */
  labels: Record<string, string>;
  /** Node the Pod runs on; created (without zone) unless `createNode` is false. */
  nodeName: string;
  /** Pod IPs, the first is status.podIP (default: one generated 10.250.x.y); [] for none. */
  ips?: string[];
  /** The Ready condition (default true). */
  ready?: boolean;
  /** spec.hostname. */
  hostname?: string;
  /** spec.subdomain. */
  subdomain?: string;
  /** Ports of the Pod's one container (named target ports resolve against these). */
  containerPorts?: { name?: string; containerPort: number; protocol?: string }[];
  /**
   * Create the Node if this process has not yet (default true): the EndpointSlice controller skips
   * Pods whose Node does not exist.
   */
  createNode?: boolean;
}

let generatedIPs = 0;

/** A Pod IP for Pods created without `ips`: 10.250.x.y, apart from the podIPv4 range. */
function generatedIP(): string {
  const n = (generatedIPs++ % 65000) + 1;
  return `10.250.${(n >> 8) & 255}.${n & 255}`;
}

/** A generated IPv4 Pod address 10.244.x.y for index i (data only; never connected to). */
export function podIPv4(index: number): string {
  const n = index + 1;
  return `10.244.${(n >> 8) & 255}.${n & 255}`;
}

/** A generated IPv6 Pod address fd00:10:244::x for index i (data only). */
export function podIPv6(index: number): string {
  return `fd00:10:244::${(index + 1).toString(16)}`;
}

function podConditions(
  ready: boolean,
): { type: string; status: string; lastTransitionTime: string }[] {
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const r = ready ? "True" : "False";
  return [
    { type: "PodScheduled", status: "True", lastTransitionTime: now },
    { type: "Initialized", status: "True", lastTransitionTime: now },
    { type: "ContainersReady", status: r, lastTransitionTime: now },
    { type: "Ready", status: r, lastTransitionTime: now },
  ];
}

/**
 * Creates a Pod on a Node and writes its status (Running, IPs, Ready) as a kubelet would; returns
 * it.
 */
export async function createPod(ns: string, name: string, options: PodOptions): Promise<Pod> {
  if (options.createNode !== false && !knownNodes.has(options.nodeName)) {
    await createNode(options.nodeName);
  }
  const spec: Record<string, unknown> = {
    nodeName: options.nodeName,
    automountServiceAccountToken: false,
    terminationGracePeriodSeconds: 30,
    containers: [{
      name: "app",
      image: "example.invalid/app:1",
      ports: options.containerPorts?.map((p) => ({ protocol: "TCP", ...p })),
    }],
  };
  if (options.hostname) spec.hostname = options.hostname;
  if (options.subdomain) spec.subdomain = options.subdomain;
  await kubeOk("POST", `/api/v1/namespaces/${ns}/pods`, {
    body: {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, labels: options.labels },
      spec,
    },
  });
  const ips = options.ips ?? [generatedIP()];
  const status: Record<string, unknown> = {
    phase: "Running",
    conditions: podConditions(options.ready ?? true),
    startTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  };
  if (ips.length > 0) {
    status.podIP = ips[0];
    status.podIPs = ips.map((ip) => ({ ip }));
  }
  return kubeOk<Pod>("PATCH", `/api/v1/namespaces/${ns}/pods/${name}/status`, {
    body: { status },
  });
}

/**
 * Options of {@linkcode createPods}: those of {@linkcode createPod} but the IPs, plus naming and
 * concurrency.
 */
export interface PodsOptions extends Omit<PodOptions, "ips"> {
  /** Name prefix: Pods are `${prefix}-${i}` (default "pod"). */
  prefix?: string;
  /** IPs of Pod i (default [podIPv4(i)]). */
  ips?: (index: number) => string[];
  /** First index (default 0). */
  start?: number;
  /** Requests in flight at once (default 20). */
  concurrency?: number;
}

/** Creates `count` Pods `${prefix}-${i}` concurrently (IPs from the index); returns their names. */
export async function createPods(
  ns: string,
  count: number,
  options: PodsOptions,
): Promise<string[]> {
  const { prefix = "pod", ips = (i: number) => [podIPv4(i)], start = 0 } = options;
  if (options.createNode !== false && !knownNodes.has(options.nodeName)) {
    await createNode(options.nodeName);
  }
  const names = Array.from({ length: count }, (_, k) => `${prefix}-${start + k}`);
  let nextIndex = 0;
  const worker = async () => {
    while (nextIndex < count) {
      const k = nextIndex++;
      await createPod(ns, names[k], { ...options, ips: ips(start + k) });
    }
  };
  const workers = Array.from({ length: Math.min(options.concurrency ?? 20, count) }, worker);
  await Promise.all(workers);
  return names;
}

/** Sets a Pod's Ready and ContainersReady conditions. */
export async function setPodReady(ns: string, name: string, ready: boolean): Promise<void> {
  await kubeOk("PATCH", `/api/v1/namespaces/${ns}/pods/${name}/status`, {
    body: { status: { conditions: podConditions(ready) } },
  });
}

/** Deletes a Pod gracefully (default grace 30 s); with no kubelet it stays terminating for good. */
export async function deletePod(
  ns: string,
  name: string,
  options: { gracePeriodSeconds?: number } = {},
): Promise<void> {
  await kubeOk("DELETE", `/api/v1/namespaces/${ns}/pods/${name}`, {
    body: {
      apiVersion: "v1",
      kind: "DeleteOptions",
      gracePeriodSeconds: options.gracePeriodSeconds ?? 30,
    },
  });
}

/** Deletes a Pod at once (grace period 0), terminating or not; a missing Pod is fine. */
export async function forceDeletePod(ns: string, name: string): Promise<void> {
  const res = await kube("DELETE", `/api/v1/namespaces/${ns}/pods/${name}`, {
    body: { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0 },
  });
  if (res.status >= 300 && res.status !== 404) {
    throw new KubeError(`DELETE pod ${ns}/${name}`, res);
  }
}

/**
 * Creates a hand-written EndpointSlice (apiVersion and kind are filled in); returns it as stored.
 */
export function createEndpointSlice(
  ns: string,
  slice: Omit<EndpointSlice, "apiVersion" | "kind"> & { apiVersion?: string; kind?: string },
): Promise<EndpointSlice> {
  return kubeOk<EndpointSlice>(
    "POST",
    `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
    {
      body: { apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", ...slice },
    },
  );
}

/** The EndpointSlices of a Service (label kubernetes.io/service-name), sorted by name. */
export async function listEndpointSlices(
  ns: string,
  serviceName: string,
): Promise<EndpointSlice[]> {
  const selector = encodeURIComponent(`kubernetes.io/service-name=${serviceName}`);
  const list = await kubeOk<KubeList<EndpointSlice>>(
    "GET",
    `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?labelSelector=${selector}`,
  );
  return list.items.sort((a, b) => (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""));
}

/** Waits until the Service's EndpointSlices satisfy `check` and returns them. */
export function waitForEndpointSlices(
  ns: string,
  serviceName: string,
  check: (slices: EndpointSlice[]) => boolean,
  options: WaitOptions = {},
): Promise<EndpointSlice[]> {
  return waitFor(async () => {
    const slices = await listEndpointSlices(ns, serviceName);
    return check(slices) && slices;
  }, { message: `EndpointSlices of ${ns}/${serviceName}`, ...options });
}
