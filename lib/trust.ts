/**
 * Trust only the API server's CA, as client-go does. `Deno.createHttpClient({ caCerts })` adds
 * the given CAs to Deno's root store (its bundled public roots, or the system's), so any of
 * those roots could vouch for the API server; Deno 2.9.6 has no client option to leave them out.
 * What does: Deno builds its root store once, at the first TLS connection, from
 * DENO_TLS_CA_STORE and (for `system`) SSL_CERT_FILE / SSL_CERT_DIR, read then, not at start.
 * So before the first connection the sidecar sets the store to `system` and its file to
 * /dev/null (in a pod, to the mount's ca.crt): the root store holds nothing else, and only the CA
 * handed to each client is trusted. Being built once, the store keeps the CA it was built with; a
 * rotated CA comes with the next client's `caCerts` (lib/kube_client.ts). A `DENO_CERT` file is
 * read at start, before this can run, and stays trusted (README "Trust"). The
 * variables are process-wide, so exec plugins are run with the environment as it was before
 * ({@linkcode pluginEnv}). Where the environment may not be written (a `--allow-env` list
 * without these names), nothing changes and the platform's roots stay trusted too.
 *
 * @module
 */

/** The variables Deno's root store is read from (the image's --allow-env names them). */
export const STORE_VARS = ["DENO_TLS_CA_STORE", "SSL_CERT_FILE", "SSL_CERT_DIR"] as const;

let before: Record<string, string | undefined> | undefined;

/**
 * Makes Deno's root store hold only `storeFile` (default: nothing), so only it and the CAs given
 * to `Deno.createHttpClient` are trusted; call before the first TLS connection. In a pod it is
 * the mount's ca.crt: a scratch image run without a /dev (a chroot) has no /dev/null, and Deno
 * refuses to start TLS when the file is missing. Returns false where the environment may not be
 * written.
 */
export function trustOnlyGivenCAs(storeFile = "/dev/null"): boolean {
  if (before) return true;
  try {
    const saved = Object.fromEntries(STORE_VARS.map((n) => [n, Deno.env.get(n)]));
    Deno.env.set("DENO_TLS_CA_STORE", "system");
    Deno.env.set("SSL_CERT_FILE", storeFile);
    Deno.env.delete("SSL_CERT_DIR");
    before = saved;
    return true;
  } catch {
    return false;
  }
}

/** The environment for a child process: the sidecar's, with the root-store variables as they
 * were before {@linkcode trustOnlyGivenCAs} (a plugin reaching its identity provider needs the
 * platform's roots). */
export function pluginEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  for (const n of STORE_VARS) {
    const v = before ? before[n] : env[n];
    if (v === undefined) delete env[n];
    else env[n] = v;
  }
  return env;
}
