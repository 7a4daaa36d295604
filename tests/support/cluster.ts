/**
 * Test support for the tests that run against the real control plane started by
 * `control-plane up` (see tests/control_plane/): it reads the cluster description named by
 * KPD_TEST_CLUSTER, talks to the API server with Deno's own fetch over one shared TLS client
 * (admin token by default), creates the objects a test needs (namespaces, Services, Nodes,
 * Pods with a written status, hand-written EndpointSlices, ServiceAccounts with RBAC and
 * TokenRequest tokens), reads watch streams, waits for conditions, writes kubeconfig files,
 * and drives the fault handles: API server stop/start/restart, etcd compaction and TCP proxies
 * that can cut, black-hole or slow connections. Every response body is consumed or cancelled,
 * so Deno's test sanitizers stay quiet; a test that opens a watch or a client must close it.
 *
 * @module
 */

// ---------------------------------------------------------------------------------------------
// Kubernetes object shapes (only the fields tests read or write)

/** Metadata common to every Kubernetes object. */
export interface ObjectMeta {
  /** Object name. */
  name?: string;
  /** Namespace, for namespaced objects. */
  namespace?: string;
  /** Prefix for a server-generated name. */
  generateName?: string;
  /** Labels. */
  labels?: Record<string, string>;
  /** Annotations. */
  annotations?: Record<string, string>;
  /** Opaque version of this object. */
  resourceVersion?: string;
  /** Unique id. */
  uid?: string;
  /** Generation of the spec. */
  generation?: number;
  /** Set when deletion has been requested (the object is terminating). */
  deletionTimestamp?: string;
  /** Creation time. */
  creationTimestamp?: string;
  /** Owners of this object. */
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string }[];
}

/** Any Kubernetes object; specific shapes below narrow it. */
export interface KubeObject {
  /** API group and version, e.g. "v1". */
  apiVersion?: string;
  /** Kind, e.g. "Pod". */
  kind?: string;
  /** Object metadata. */
  metadata?: ObjectMeta;
  /** Other fields. */
  [key: string]: unknown;
}

/** A list response, e.g. GET /api/v1/namespaces/ns/pods. */
export interface KubeList<T = KubeObject> {
  /** Kind, e.g. "PodList". */
  kind?: string;
  /** List metadata: the resourceVersion of the list and the continue token of a page. */
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  /** The objects. */
  items: T[];
}

/** A Kubernetes Status, as sent with errors and in ERROR watch events. */
export interface KubeStatus {
  /** Always "Status". */
  kind?: string;
  /** "Success" or "Failure". */
  status?: string;
  /** HTTP status code, e.g. 410. */
  code?: number;
  /** Human-readable message. */
  message?: string;
  /** Machine-readable reason, e.g. "Expired". */
  reason?: string;
}

/** One endpoint of an EndpointSlice. */
export interface Endpoint {
  /** Addresses (one, for Pods). */
  addresses: string[];
  /** Ready, serving and terminating conditions. */
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  /** Hostname (from the Pod's spec.hostname with a subdomain). */
  hostname?: string;
  /** Node the endpoint is on. */
  nodeName?: string;
  /** Zone of that Node. */
  zone?: string;
  /** The Pod behind the endpoint. */
  targetRef?: { kind?: string; name?: string; namespace?: string; uid?: string };
  /** Topology hints. */
  hints?: { forZones?: { name: string }[]; forNodes?: { name: string }[] };
}

/** One port of an EndpointSlice. */
export interface EndpointPort {
  /** Port name; "" for an unnamed port. */
  name?: string;
  /** Port number. */
  port?: number;
  /** "TCP", "UDP" or "SCTP". */
  protocol?: string;
  /** Application protocol. */
  appProtocol?: string;
}

/** A discovery.k8s.io/v1 EndpointSlice. */
export interface EndpointSlice extends KubeObject {
  /** Metadata: the label kubernetes.io/service-name ties the slice to its Service. */
  metadata: ObjectMeta;
  /** "IPv4", "IPv6" or "FQDN". */
  addressType: string;
  /** Endpoints; null or absent when there are none. */
  endpoints?: Endpoint[] | null;
  /** Ports; null or absent when none. */
  ports?: EndpointPort[] | null;
}

/** A v1 Service port. */
export interface ServicePort {
  /** Port name (required when there are several ports). */
  name?: string;
  /** Service port. */
  port: number;
  /** Target port on the Pods: a number or a container port name. */
  targetPort?: number | string;
  /** "TCP" (default), "UDP" or "SCTP". */
  protocol?: string;
}

/** A v1 Service. */
export interface Service extends KubeObject {
  /** Metadata. */
  metadata: ObjectMeta;
  /** The fields tests use. */
  spec: {
    selector?: Record<string, string> | null;
    ports?: ServicePort[];
    clusterIP?: string;
    clusterIPs?: string[];
    ipFamilies?: string[];
    ipFamilyPolicy?: string;
    type?: string;
    publishNotReadyAddresses?: boolean;
    [key: string]: unknown;
  };
}

/** A v1 Pod. */
export interface Pod extends KubeObject {
  /** Metadata. */
  metadata: ObjectMeta;
  /** The spec. */
  spec: { nodeName?: string; hostname?: string; subdomain?: string; [key: string]: unknown };
  /** The status written by {@linkcode createPod}. */
  status?: {
    phase?: string;
    podIP?: string;
    podIPs?: { ip: string }[];
    conditions?: { type: string; status: string }[];
    [key: string]: unknown;
  };
}

/** A watch event, one line of a watch stream. */
export interface WatchEvent<T = KubeObject> {
  /** "ADDED", "MODIFIED", "DELETED", "BOOKMARK" or "ERROR". */
  type: string;
  /** The object; a {@linkcode KubeStatus} for ERROR. */
  object: T;
}

/** An RBAC rule, as in a Role. */
export interface PolicyRule {
  /** API groups; "" is the core group. */
  apiGroups?: string[];
  /** Resources, e.g. "endpointslices" or "pods/status". */
  resources?: string[];
  /** Verbs, e.g. "get", "list", "watch". */
  verbs: string[];
  /** Restrict to these object names. */
  resourceNames?: string[];
  /** Non-resource URLs (ClusterRoles only). */
  nonResourceURLs?: string[];
}

/** An RBAC subject. */
export interface Subject {
  /** "ServiceAccount", "User" or "Group". */
  kind: "ServiceAccount" | "User" | "Group";
  /** Name of the account, user or group. */
  name: string;
  /** Namespace, for a ServiceAccount (default: the Role's namespace). */
  namespace?: string;
}

// ---------------------------------------------------------------------------------------------
// The cluster and the HTTP client

/** The running control plane, as described by the file KPD_TEST_CLUSTER names. */
export interface TestCluster {
  /** API server URL, https://127.0.0.1:port. */
  server: string;
  /** Path of the CA certificate that signed the API server's certificate. */
  caFile: string;
  /** That CA certificate, PEM. */
  caPem: string;
  /** A bearer token of a user in system:masters. */
  adminToken: string;
  /** Base URL (http) of the fault handles. */
  control: string;
  /** Path of an admin kubeconfig. */
  kubeconfig: string;
  /** The control plane's directory (tokens, certificates, logs). */
  dir: string;
  /** Kubernetes version, e.g. "v1.37.2". */
  version: string;
  /** etcd client URL. */
  etcd: string;
}

let cached: TestCluster | undefined;
let sharedClient: Deno.HttpClient | undefined;

/** The running control plane; read once from KPD_TEST_CLUSTER, throws if it is not set. */
export function testCluster(): TestCluster {
  if (cached) return cached;
  const file = Deno.env.get("KPD_TEST_CLUSTER");
  if (!file) {
    throw new Error(
      "KPD_TEST_CLUSTER is not set: run the Kubernetes tests through `deno task test`, " +
        "which starts the control plane (tests/control_plane) and sets it",
    );
  }
  const info = JSON.parse(Deno.readTextFileSync(file)) as Record<string, string>;
  cached = {
    server: info.server,
    caFile: info.caFile,
    caPem: Deno.readTextFileSync(info.caFile),
    adminToken: Deno.readTextFileSync(info.adminTokenFile).trim(),
    control: info.control,
    kubeconfig: info.kubeconfig,
    dir: info.dir,
    version: info.version,
    etcd: info.etcd,
  };
  return cached;
}

// The shared client is made when this module loads (outside any test), so that Deno's resource
// sanitizer does not blame the first test that uses it for a resource it never closes.
if (Deno.env.get("KPD_TEST_CLUSTER")) sharedClient = createClient();

function client(): Deno.HttpClient {
  return sharedClient ??= createClient();
}

/**
 * A new HTTP client trusting the cluster CA (optionally presenting cert-user's client certificate);
 * the caller closes it.
 */
export function createClient(options: { clientCert?: boolean } = {}): Deno.HttpClient {
  const c = testCluster();
  if (options.clientCert) {
    return Deno.createHttpClient({
      caCerts: [c.caPem],
      cert: Deno.readTextFileSync(`${c.dir}/cert-user.crt`),
      key: Deno.readTextFileSync(`${c.dir}/cert-user.key`),
    });
  }
  return Deno.createHttpClient({ caCerts: [c.caPem] });
}

/** The bearer token of a static-token test user ("alice" or "bob", no groups). */
export function userToken(user: "alice" | "bob"): string {
  return Deno.readTextFileSync(`${testCluster().dir}/${user}.token`).trim();
}

/** Options of {@linkcode kube} and {@linkcode kubeFetch}. */
export interface KubeRequestOptions {
  /** Request body; JSON-encoded unless a string. */
  body?: unknown;
  /** Bearer token (default: the admin token); null sends no Authorization header. */
  token?: string | null;
  /** Content type (default application/json, application/merge-patch+json for PATCH). */
  contentType?: string;
  /** Server base URL (default: the API server), e.g. a fault proxy's URL. */
  server?: string;
  /** HTTP client (default: the shared one). */
  client?: Deno.HttpClient;
  /** Aborts the request. */
  signal?: AbortSignal;
}

/** A response of {@linkcode kube}: status and body (parsed JSON, or the text if not JSON). */
export interface KubeResponse<T = KubeObject> {
  /** HTTP status. */
  status: number;
  /** Parsed JSON body; the text when the body is not JSON. */
  body: T;
}

/** An API request that failed: HTTP status and the server's message. */
export class KubeError extends Error {
  /** HTTP status. */
  readonly status: number;
  /** The response body (usually a {@linkcode KubeStatus}). */
  readonly body: unknown;

  /** Makes the error for one request. */
  constructor(request: string, response: { status: number; body: unknown }) {
    super(`${request}: HTTP ${response.status}: ${messageOf(response.body)}`);
    this.name = "KubeError";
    this.status = response.status;
    this.body = response.body;
  }
}

function messageOf(body: unknown): string {
  if (typeof body === "string") return body.slice(0, 500);
  if (body && typeof body === "object" && "message" in body) return String(body.message);
  return JSON.stringify(body)?.slice(0, 500) ?? "";
}

/**
 * Sends one API request and returns the raw response, whose body the caller must consume or cancel.
 */
export function kubeFetch(
  method: string,
  path: string,
  options: KubeRequestOptions = {},
): Promise<Response> {
  const headers = new Headers({ accept: "application/json" });
  const token = options.token === undefined ? testCluster().adminToken : options.token;
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    headers.set(
      "content-type",
      options.contentType ??
        (method.toUpperCase() === "PATCH" ? "application/merge-patch+json" : "application/json"),
    );
  }
  return fetch(`${options.server ?? testCluster().server}${path}`, {
    method,
    headers,
    body,
    client: options.client ?? client(),
    signal: options.signal,
  });
}

/** Sends one API request and returns its status and body; never throws for an HTTP status. */
export async function kube<T = KubeObject>(
  method: string,
  path: string,
  options: KubeRequestOptions = {},
): Promise<KubeResponse<T>> {
  const res = await kubeFetch(method, path, options);
  const text = await res.text();
  let body: unknown = text;
  if ((res.headers.get("content-type") ?? "").includes("json") && text !== "") {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { status: res.status, body: body as T };
}

/** Like {@linkcode kube}, but throws a {@linkcode KubeError} when the status is 300 or more. */
export async function kubeOk<T = KubeObject>(
  method: string,
  path: string,
  options: KubeRequestOptions = {},
): Promise<T> {
  const res = await kube<T>(method, path, options);
  if (res.status >= 300) throw new KubeError(`${method} ${path}`, res);
  return res.body;
}

// ---------------------------------------------------------------------------------------------
// Watch streams

/** An open watch: read events one by one, then close it. */
export interface WatchStream<T = KubeObject> {
  /**
   * The next event; undefined when the server ended the stream; rejects on timeout or a connection
   * error.
   */
  next(options?: { timeoutMs?: number }): Promise<WatchEvent<T> | undefined>;
  /** Reads until an event matches (default timeout 20 s); rejects if the stream ends first. */
  waitFor(
    match: (event: WatchEvent<T>) => boolean,
    options?: { timeoutMs?: number },
  ): Promise<WatchEvent<T>>;
  /** Cancels the stream (idempotent). */
  close(): Promise<void>;
}

/**
 * Opens a watch (path without `watch=1`, e.g. a list path with a resourceVersion); throws a
 * {@linkcode KubeError} unless the server answers 200.
 */
export async function openWatch<T = KubeObject>(
  path: string,
  options: Omit<KubeRequestOptions, "body" | "contentType"> = {},
): Promise<WatchStream<T>> {
  const sep = path.includes("?") ? "&" : "?";
  const res = await kubeFetch("GET", `${path}${sep}watch=1`, options);
  if (res.status !== 200 || !res.body) {
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    throw new KubeError(`WATCH ${path}`, { status: res.status, body });
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  let ended = false;
  let closed = false;

  async function next(opts: { timeoutMs?: number } = {}): Promise<WatchEvent<T> | undefined> {
    while (true) {
      const nl = buffer.indexOf("\n");
      if (nl >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line) return JSON.parse(line) as WatchEvent<T>;
        continue;
      }
      if (ended || closed) {
        const rest = buffer.trim();
        buffer = "";
        return rest ? JSON.parse(rest) as WatchEvent<T> : undefined;
      }
      if (!pending) {
        pending = reader.read();
        // A read left pending by a timeout may fail later (e.g. a reset): never unhandled.
        pending.catch(() => {});
      }
      const result = await withTimeout(pending, opts.timeoutMs ?? 20_000, `a watch event`);
      pending = undefined;
      if (result.done) ended = true;
      else buffer += decoder.decode(result.value, { stream: true });
    }
  }

  return {
    next,
    async waitFor(match, opts = {}) {
      const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
      while (true) {
        const event = await next({ timeoutMs: Math.max(1, deadline - Date.now()) });
        if (!event) throw new Error(`watch ${path} ended before the expected event`);
        if (match(event)) return event;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await reader.cancel().catch(() => {});
    },
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Waiting

/** Options of {@linkcode waitFor}. */
export interface WaitOptions {
  /** Give up after this long (default 20000 ms). */
  timeoutMs?: number;
  /** Poll interval (default 50 ms). */
  intervalMs?: number;
  /** What is awaited, for the timeout error. */
  message?: string;
}

/**
 * Polls `fn` until it returns something other than undefined or false, and returns that; a throw
 * counts as "not yet" and is reported on timeout.
 */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false>,
  options: WaitOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const intervalMs = options.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (true) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const what = options.message ?? "condition";
      const cause = lastError === undefined
        ? ""
        : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`, {
        cause: lastError,
      });
    }
    await sleep(intervalMs);
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A unique DNS-1123 label `${prefix}-${random}`: lowercase, at most 63 characters. */
export function uniqueName(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  const suffix = Array.from(bytes, (b) => (b % 36).toString(36)).join("");
  const clean = prefix.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "") ||
    "x";
  return `${clean.slice(0, 63 - suffix.length - 1).replace(/-+$/, "")}-${suffix}`;
}

// ---------------------------------------------------------------------------------------------
// Objects

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

// ---------------------------------------------------------------------------------------------
// Identity and RBAC

/** Options of {@linkcode grantRole}. */
export interface GrantOptions {
  /** Name of the Role and RoleBinding (default: unique from the subject). */
  name?: string;
  /**
   * Make a ClusterRole and ClusterRoleBinding instead (`ns` is then only the ServiceAccount
   * default).
   */
  clusterWide?: boolean;
  /** Wait until the API server authorizes the first rule (default true). */
  wait?: boolean;
}

function rbacPaths(
  ns: string,
  clusterWide: boolean | undefined,
): { role: string; binding: string } {
  const base = "/apis/rbac.authorization.k8s.io/v1";
  return clusterWide
    ? { role: `${base}/clusterroles`, binding: `${base}/clusterrolebindings` }
    : { role: `${base}/namespaces/${ns}/roles`, binding: `${base}/namespaces/${ns}/rolebindings` };
}

/** The user name and groups the API server gives a subject. */
function userOf(ns: string, subject: Subject): { user: string; groups: string[] } {
  switch (subject.kind) {
    case "ServiceAccount": {
      const saNs = subject.namespace ?? ns;
      return {
        user: `system:serviceaccount:${saNs}:${subject.name}`,
        groups: [
          "system:serviceaccounts",
          `system:serviceaccounts:${saNs}`,
          "system:authenticated",
        ],
      };
    }
    case "User":
      return { user: subject.name, groups: ["system:authenticated"] };
    case "Group":
      return { user: "kpd-test-probe", groups: [subject.name, "system:authenticated"] };
  }
}

/**
 * Whether the API server authorizes the subject for the first verb and resource of a rule
 * (SubjectAccessReview).
 */
async function allowed(
  ns: string,
  subject: Subject,
  rule: PolicyRule,
  clusterWide?: boolean,
): Promise<boolean> {
  const { user, groups } = userOf(ns, subject);
  const [group, resourceFull] = [rule.apiGroups?.[0] ?? "", rule.resources?.[0] ?? ""];
  const [resource, subresource] = resourceFull.split("/");
  const spec: Record<string, unknown> = { user, groups };
  if (rule.nonResourceURLs?.length) {
    spec.nonResourceAttributes = { path: rule.nonResourceURLs[0], verb: rule.verbs[0] };
  } else {
    spec.resourceAttributes = {
      namespace: clusterWide ? "" : ns,
      verb: rule.verbs[0] === "*" ? "get" : rule.verbs[0],
      group: group === "*" ? "" : group,
      resource: resource === "*" ? "pods" : resource,
      subresource,
      name: rule.resourceNames?.[0],
    };
  }
  const review = await kubeOk<{ status?: { allowed?: boolean } }>(
    "POST",
    "/apis/authorization.k8s.io/v1/subjectaccessreviews",
    { body: { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", spec } },
  );
  return review.status?.allowed === true;
}

/**
 * Grants rules to a subject with a Role and RoleBinding (or cluster-wide ones), waits until they
 * take effect, and returns their name.
 */
export async function grantRole(
  ns: string,
  subject: Subject,
  rules: PolicyRule[],
  options: GrantOptions = {},
): Promise<string> {
  const name = options.name ?? uniqueName(`kpd-test-${subject.name}`);
  const paths = rbacPaths(ns, options.clusterWide);
  const roleKind = options.clusterWide ? "ClusterRole" : "Role";
  await kubeOk("POST", paths.role, {
    body: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: roleKind,
      metadata: { name },
      rules: rules.map((r) => ({
        ...r,
        apiGroups: r.apiGroups ?? (r.nonResourceURLs ? undefined : [""]),
      })),
    },
  });
  const rbacSubject = subject.kind === "ServiceAccount"
    ? { kind: "ServiceAccount", name: subject.name, namespace: subject.namespace ?? ns }
    : { kind: subject.kind, name: subject.name, apiGroup: "rbac.authorization.k8s.io" };
  await kubeOk("POST", paths.binding, {
    body: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: options.clusterWide ? "ClusterRoleBinding" : "RoleBinding",
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: roleKind, name },
      subjects: [rbacSubject],
    },
  });
  if (options.wait !== false && rules.length > 0) {
    await waitFor(() => allowed(ns, subject, rules[0], options.clusterWide), {
      message: `RBAC grant ${name} to take effect`,
    });
  }
  return name;
}

/**
 * Deletes a Role and RoleBinding made by {@linkcode grantRole} and waits until its first rule is no
 * longer authorized for its subjects (unless `wait` is false).
 */
export async function revokeRole(
  ns: string,
  name: string,
  options: { clusterWide?: boolean; wait?: boolean } = {},
): Promise<void> {
  const paths = rbacPaths(ns, options.clusterWide);
  const role = await kubeOk<{ rules?: PolicyRule[] }>("GET", `${paths.role}/${name}`);
  const binding = await kubeOk<{ subjects?: Subject[] }>("GET", `${paths.binding}/${name}`);
  await kubeOk("DELETE", `${paths.binding}/${name}`);
  await kubeOk("DELETE", `${paths.role}/${name}`);
  const rule = role.rules?.[0];
  if (options.wait === false || !rule) return;
  for (const subject of binding.subjects ?? []) {
    await waitFor(async () => !(await allowed(ns, subject, rule, options.clusterWide)), {
      message: `RBAC revocation of ${name} to take effect`,
    });
  }
}

/**
 * Creates a ServiceAccount and, when rules are given, a Role and RoleBinding (named like it)
 * granting them; returns its name.
 */
export async function createServiceAccount(
  ns: string,
  name: string,
  options: { rules?: PolicyRule[] } = {},
): Promise<string> {
  const res = await kube("POST", `/api/v1/namespaces/${ns}/serviceaccounts`, {
    body: { apiVersion: "v1", kind: "ServiceAccount", metadata: { name } },
  });
  if (res.status >= 300 && res.status !== 409) {
    throw new KubeError(`POST serviceaccount ${ns}/${name}`, res);
  }
  if (options.rules) {
    await grantRole(ns, { kind: "ServiceAccount", name }, options.rules, { name });
  }
  return name;
}

/**
 * Mints a ServiceAccount token through the TokenRequest API (expirationSeconds at least 600) and
 * returns it.
 */
export async function mintToken(
  ns: string,
  sa: string,
  options: { expirationSeconds?: number; audiences?: string[] } = {},
): Promise<string> {
  const spec: Record<string, unknown> = {};
  if (options.expirationSeconds !== undefined) spec.expirationSeconds = options.expirationSeconds;
  if (options.audiences) spec.audiences = options.audiences;
  const review = await kubeOk<{ status: { token: string } }>(
    "POST",
    `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
    { body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec } },
  );
  return review.status.token;
}

/** The user name the API server sees for a token (SelfSubjectReview). */
export async function whoAmI(
  options: Pick<KubeRequestOptions, "token" | "client" | "server"> = {},
): Promise<{ username: string; groups: string[] }> {
  const review = await kubeOk<{ status: { userInfo: { username: string; groups?: string[] } } }>(
    "POST",
    "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    {
      ...options,
      body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
    },
  );
  return { username: review.status.userInfo.username, groups: review.status.userInfo.groups ?? [] };
}

// ---------------------------------------------------------------------------------------------
// Kubeconfig

/** Options of {@linkcode writeKubeconfig}. */
export interface KubeconfigOptions {
  /** Server URL (default: the API server). */
  server?: string;
  /** Bearer token (default: the admin token, unless clientCert or tokenFile). */
  token?: string;
  /** A file the client reads the token from (`tokenFile` and `token-file`), instead of `token`. */
  tokenFile?: string;
  /** Authenticate with cert-user's client certificate instead of a token. */
  clientCert?: boolean;
  /** The context's namespace. */
  namespace?: string;
  /** Embed CA and client certificate as *-data (default true); false names the files. */
  inline?: boolean;
}

/** Writes a kubeconfig file with one cluster, user and context (the current one). */
export async function writeKubeconfig(
  path: string,
  options: KubeconfigOptions = {},
): Promise<void> {
  const c = testCluster();
  const q = (s: string) => JSON.stringify(s);
  const b64 = (file: string) => btoa(Deno.readTextFileSync(file));
  const inline = options.inline ?? true;
  const lines = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: kpd-test",
    "  cluster:",
    `    server: ${q(options.server ?? c.server)}`,
    inline
      ? `    certificate-authority-data: ${q(b64(c.caFile))}`
      : `    certificate-authority: ${q(c.caFile)}`,
    "users:",
    "- name: kpd-test-user",
    "  user:",
  ];
  if (options.clientCert) {
    const [crt, key] = [`${c.dir}/cert-user.crt`, `${c.dir}/cert-user.key`];
    lines.push(
      inline ? `    client-certificate-data: ${q(b64(crt))}` : `    client-certificate: ${q(crt)}`,
      inline ? `    client-key-data: ${q(b64(key))}` : `    client-key: ${q(key)}`,
    );
  } else if (options.tokenFile) {
    // client-go reads tokenFile, @kubernetes/client-node reads token-file: write both.
    lines.push(`    tokenFile: ${q(options.tokenFile)}`, `    token-file: ${q(options.tokenFile)}`);
  } else {
    lines.push(`    token: ${q(options.token ?? c.adminToken)}`);
  }
  lines.push(
    "contexts:",
    "- name: kpd-test",
    "  context:",
    "    cluster: kpd-test",
    "    user: kpd-test-user",
  );
  if (options.namespace) lines.push(`    namespace: ${q(options.namespace)}`);
  lines.push("current-context: kpd-test", "");
  await Deno.writeTextFile(path, lines.join("\n"), { mode: 0o600 });
}

// ---------------------------------------------------------------------------------------------
// Fault handles

async function control<T>(method: string, path: string): Promise<T> {
  const res = await fetch(`${testCluster().control}${path}`, { method });
  const text = await res.text();
  if (!res.ok) throw new Error(`control ${method} ${path}: HTTP ${res.status}: ${text.trim()}`);
  return JSON.parse(text) as T;
}

/**
 * Stops and starts the API server (etcd keeps the data); resolves once /readyz answers 200 (~15 s).
 * `featureGates` (e.g. "WatchList=false"; "" for the defaults) applies from this start on.
 */
export async function restartAPIServer(options: { featureGates?: string } = {}): Promise<void> {
  const q = options.featureGates === undefined
    ? ""
    : `?featureGates=${encodeURIComponent(options.featureGates)}`;
  await control("POST", `/apiserver/restart${q}`);
}

/** Stops the API server. */
export async function stopAPIServer(): Promise<void> {
  await control("POST", "/apiserver/stop");
}

/**
 * Starts the stopped API server; resolves once /readyz answers 200. Do not call it while the server
 * runs.
 */
export async function startAPIServer(): Promise<void> {
  await control("POST", "/apiserver/start");
}

/** Compacts etcd at its current revision and returns that revision. */
export async function compactEtcd(): Promise<number> {
  const r = await control<{ revision: number }>("POST", "/etcd/compact");
  return r.revision;
}

/** A TCP proxy to the API server (TLS stays end to end) with faults on demand. */
export interface FaultProxy {
  /** https://127.0.0.1:port, to use as the server URL. */
  url: string;
  /** 127.0.0.1:port. */
  address: string;
  /** Resets (RST) every open connection; returns how many there were. */
  cut(): Promise<number>;
  /** Forwards nothing any more, on open and new connections; those stay dead after pass(). */
  blackhole(): Promise<void>;
  /** Forwards again (new connections only), with optional latency per chunk. */
  pass(options?: { latencyMs?: number }): Promise<void>;
  /** Connections accepted so far and open now, and the mode. */
  stats(): Promise<{ accepted: number; open: number; mode: string; latencyMs: number }>;
  /** Closes the listener and resets its connections. */
  close(): Promise<void>;
}

/** Starts a fault proxy to the API server. */
export async function createProxy(): Promise<FaultProxy> {
  const { id, address } = await control<{ id: string; address: string }>("POST", "/proxies");
  return {
    url: `https://${address}`,
    address,
    async cut() {
      return (await control<{ cut: number }>("POST", `/proxies/${id}/cut`)).cut;
    },
    async blackhole() {
      await control("POST", `/proxies/${id}/mode?mode=blackhole`);
    },
    async pass(options = {}) {
      await control("POST", `/proxies/${id}/mode?mode=pass&latencyMs=${options.latencyMs ?? 0}`);
    },
    stats() {
      return control("GET", `/proxies/${id}`);
    },
    async close() {
      await control("DELETE", `/proxies/${id}`);
    },
  };
}
