/**
 * Kubeconfig files for the real control plane: token, token file or client certificate, with
 * the CA and certificates embedded or named as files.
 *
 * @module
 */

import { testCluster } from "./http.ts";

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
