/**
 * The connection of kubeconfig mode (`deno task start` on a laptop): the chosen context's
 * server, over https with its CA (read once per change) or plain http (`kubectl proxy`), with the
 * user's credentials per request (lib/kube_credentials.ts). The HTTP client is made again only
 * when what it holds changes: the CA, or a client certificate rotated on disk or handed out
 * anew by an exec plugin. Imported by lib/kube_client.ts in kubeconfig mode only, so the
 * in-cluster sidecar never loads the YAML parser.
 *
 * @module
 */
import { picksHttp2 } from "./alpn.ts";
import { ConfigError } from "./config.ts";
import type { KubeConnection } from "./kube_connection.ts";
import { KubeCredentials, pemReader } from "./kube_credentials.ts";
import { type Kubeconfig, loadKubeconfig } from "./kubeconfig.ts";
import { trustOnlyGivenCAs } from "./trust.ts";

/** Options of {@linkcode openKubeconfig}. */
export interface OpenKubeconfigOptions {
  /** kubeconfig context; default its current-context. */
  context?: string;
}

/** Loads the kubeconfig file(s) of `paths` (`:`-separated) and connects to its context. */
export async function openKubeconfig(
  paths: string,
  options: OpenKubeconfigOptions = {},
): Promise<KubeConnection & { credentials: KubeCredentials }> {
  return kubeconfigConnection(await loadKubeconfig(paths, options.context));
}

/** The connection to a loaded kubeconfig's cluster as its user. */
export function kubeconfigConnection(
  kc: Kubeconfig,
): KubeConnection & { credentials: KubeCredentials } {
  const { cluster } = kc;
  const ca = cluster.ca
    ? pemReader(cluster.ca, `certificate-authority of cluster ${JSON.stringify(cluster.name)}`)
    : undefined;
  const credentials = new KubeCredentials(kc.user, kc.where, () => ({
    server: cluster.server,
    ca: ca?.(),
    proxyUrl: cluster.proxyUrl,
    config: cluster.execExtension,
  }));
  try {
    // A file named but missing is a mistake to say at start, as kubectl does, not per request.
    ca?.();
    credentials.readFiles();
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const https = cluster.server.startsWith("https:");
  // A kubeconfig that names a CA trusts only it (as kubectl); one without keeps the platform's.
  if (https && ca) trustOnlyGivenCAs();
  let client: Deno.HttpClient | undefined;
  let holds = "";
  /** The client for this CA and client certificate: the last one unless they changed. */
  const clientFor = (cert?: string, key?: string): Deno.HttpClient => {
    const caPem = https ? ca?.() : undefined;
    const [c, k] = https ? [cert, key] : [undefined, undefined];
    const id = `${caPem}\0${c}\0${k}`;
    if (client && id === holds) return client;
    let next: Deno.HttpClient;
    try {
      next = Deno.createHttpClient({
        caCerts: caPem ? [caPem] : undefined,
        cert: c,
        key: k,
        proxy: cluster.proxyUrl ? { url: cluster.proxyUrl } : undefined,
      });
    } catch (e) {
      // A certificate and key read between the writes of a rotation do not match; the next
      // request reads them again. Deno's message names the problem, not the PEM.
      throw new Error(
        `Cannot use the CA or client certificate of context ${JSON.stringify(kc.context)} in ` +
          `kubeconfig ${kc.where}: ${(e as Error).message.split("\n")[0]}`,
      );
    }
    client?.close();
    client = next;
    holds = id;
    return next;
  };
  return {
    server: cluster.server,
    mode: "kubeconfig",
    namespace: kc.namespace,
    credentials,
    async fetch(path, init = {}) {
      const creds = await credentials.current();
      const headers = new Headers(init.headers);
      for (const [k, v] of creds.headers) {
        try {
          headers.append(k, v);
        } catch {
          // Deno's message quotes the value, which is a credential (say, a tokenFile pointed at
          // a key): name it instead.
          throw new Error(
            `Cannot send the ${k} header of user ${JSON.stringify(kc.user.name)} in kubeconfig ` +
              `${kc.where}: its value is not a valid HTTP header value (a line break, or a ` +
              "character beyond Latin-1); check the user's token, tokenFile or exec plugin",
          );
        }
      }
      const c = clientFor(creds.cert, creds.key);
      const response = await fetch(`${cluster.server}${path}`, { ...init, headers, client: c });
      // As client-go's round trippers: a 401 renews what this request carried, at once.
      if (response.status === 401) credentials.unauthorized(creds);
      return response;
    },
    unauthorized() {
      credentials.unauthorized();
    },
    reset() {
      client?.close();
      client = undefined;
    },
    // Through a proxy the pick is the proxy's business: cannot tell, each watch probes its own.
    multiplexed: () =>
      https && !cluster.proxyUrl ? picksHttp2(cluster.server, ca?.()) : Promise.resolve(false),
    close() {
      credentials.close();
      client?.close();
      client = undefined;
    },
  };
}
