/**
 * The running control plane and the HTTP to its API server, for the tests that run against
 * the real control plane started by `control-plane up` (see tests/control_plane/): it reads the
 * cluster description named by KPD_TEST_CLUSTER and talks to the API server with Deno's own
 * fetch over one shared TLS client (admin token by default). Every response body is consumed or
 * cancelled, so Deno's test sanitizers stay quiet; a test that opens a client must close it.
 *
 * @module
 */

import type { KubeObject } from "./types.ts";

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
