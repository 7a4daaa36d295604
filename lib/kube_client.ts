/**
 * The connection to the Kubernetes API server: where it is, how to trust it and how to
 * authenticate. In a cluster: the pod's mounted service account, whose token is re-read at
 * least once a minute and at once after a 401 (bound tokens expire and the kubelet rewrites the
 * file), and whose ca.crt is read again whenever the connection is made anew (after a failure),
 * so a rotated cluster CA is trusted without a restart. Out of a cluster: the current kubeconfig
 * context (lib/kubeconfig_connection.ts, a dynamic import taken only in that mode: exec plugins,
 * token files, rotating certificates, merged KUBECONFIG files, http:// servers). Requests use Deno's own `fetch` with a
 * `Deno.HttpClient`.
 *
 * @module
 */
import { ConfigError } from "./config.ts";
import { picksHttp2 } from "./alpn.ts";
import { trustOnlyGivenCAs } from "./trust.ts";
import type { KubeConnection } from "./kube_connection.ts";

/** Re-read the service-account token this often even without a 401; the kubelet refreshes it
 * well before expiry, and client-go re-reads it every minute. */
export const TOKEN_RELOAD_INTERVAL_MS = 60_000;

/** Options for {@linkcode connect}. */
export interface ConnectOptions {
  /** Explicit kubeconfig path; when unset, in-cluster is used if the environment offers it. */
  kubeconfig?: string;
  /** kubeconfig context; default its current context. */
  context?: string;
  /** Where the service account is mounted. */
  serviceAccountDir: string;
  /** Environment lookup. Default: `Deno.env.get`. */
  env?: (name: string) => string | undefined;
  /** Called when the token file is read again. */
  onTokenReload?: () => void;
}

/** Opens a connection: kubeconfig if one is given (`a:b` merges files, as KUBECONFIG), else
 * in-cluster, else the default kubeconfig (~/.kube/config), else a ConfigError saying neither
 * was found. */
export async function connect(options: ConnectOptions): Promise<KubeConnection> {
  const env = options.env ?? ((n: string) => Deno.env.get(n));
  if (options.kubeconfig) return await fromKubeconfig(options.kubeconfig, options.context);
  const host = env("KUBERNETES_SERVICE_HOST");
  if (host) return inCluster(host, env("KUBERNETES_SERVICE_PORT") ?? "443", options);
  const home = env("HOME");
  const fallback = home ? `${home}/.kube/config` : undefined;
  if (fallback && exists(fallback)) return await fromKubeconfig(fallback, options.context);
  throw new ConfigError(
    "Neither a cluster nor a kubeconfig found: run in a pod (KUBERNETES_SERVICE_HOST is set " +
      "there), or set --kubeconfig / KUBECONFIG to a kubeconfig file",
  );
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function readText(path: string, setting: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw new ConfigError(
      `Cannot read ${path} (${setting}): ${(e as Error).message}; ` +
        `mount the service account or point ${setting} at the right directory`,
    );
  }
}

function inCluster(host: string, port: string, options: ConnectOptions): KubeConnection {
  const dir = options.serviceAccountDir;
  const setting = "--service-account-dir";
  let ca = readText(`${dir}/ca.crt`, setting);
  let token = readText(`${dir}/token`, setting).trim();
  let readAt = Date.now();
  let namespace: string | undefined;
  try {
    namespace = Deno.readTextFileSync(`${dir}/namespace`).trim() || undefined;
  } catch {
    namespace = undefined;
  }
  // Only ca.crt vouches for the API server, as in client-go (see lib/trust.ts).
  trustOnlyGivenCAs(`${dir}/ca.crt`);
  let client = Deno.createHttpClient({ caCerts: [ca] });
  const h = host.includes(":") ? `[${host}]` : host;
  const currentToken = (): string => {
    if (Date.now() - readAt >= TOKEN_RELOAD_INTERVAL_MS) {
      try {
        const next = Deno.readTextFileSync(`${dir}/token`).trim();
        if (next !== token) options.onTokenReload?.();
        token = next;
      } catch {
        // Keep the old token; the kubelet may be mid-rewrite. The next request tries again.
      }
      readAt = Date.now();
    }
    return token;
  };
  return {
    server: `https://${h}:${port}`,
    mode: "in-cluster",
    namespace,
    fetch(path, init = {}) {
      const headers = new Headers(init.headers);
      try {
        headers.set("Authorization", `Bearer ${currentToken()}`);
      } catch {
        // Deno's message quotes the value, which is the token: name the file instead.
        return Promise.reject(
          new Error(
            `Cannot send the Authorization header: the token in ${dir}/token is not a valid ` +
              "HTTP header value (a line break, or a character beyond Latin-1)",
          ),
        );
      }
      return fetch(`https://${h}:${port}${path}`, { ...init, headers, client });
    },
    unauthorized() {
      readAt = 0;
    },
    reset() {
      // A connection made anew (after a failure) trusts ca.crt as it is now: the kubelet rotates
      // it in place when the cluster's CA changes, and the API server may already present a
      // certificate from the new CA. An unreadable or unusable file keeps the CA in use.
      client.close();
      try {
        const now = Deno.readTextFileSync(`${dir}/ca.crt`);
        client = Deno.createHttpClient({ caCerts: [now] });
        ca = now;
      } catch {
        client = Deno.createHttpClient({ caCerts: [ca] });
      }
    },
    multiplexed: () => picksHttp2(`https://${h}:${port}`, ca),
    close() {
      client.close();
    },
  };
}

async function fromKubeconfig(paths: string, context?: string): Promise<KubeConnection> {
  // Imported only here: the kubeconfig loader brings the YAML parser, which in-cluster mode
  // never needs.
  const { openKubeconfig } = await import("./kubeconfig_connection.ts");
  return await openKubeconfig(paths, { context });
}
