/**
 * The credentials of a kubeconfig user, per request, in client-go's order: a bearer token
 * (`tokenFile`, re-read at most once a minute and after a 401; else `token`), else basic auth,
 * else the exec plugin's token; the client certificate from the kubeconfig's files or data, or
 * from the exec plugin; impersonation headers. Files are read once per change (see
 * lib/watched_file.ts), so a request costs a `stat` at most, and a rotated certificate or token
 * on disk is picked up without a restart.
 *
 * @module
 */
import { type ExecClusterInfo, type ExecCredential, ExecCredentials } from "./exec_credential.ts";
import type { KubeconfigUser, PemSource } from "./kubeconfig.ts";
import { WatchedFile } from "./watched_file.ts";

/** client-go re-reads a token file this often ("cachingTokenSource", one minute). */
export const TOKEN_FILE_INTERVAL_MS = 60_000;

/** Client certificate, key and CA files are looked at this often: a rotation is in use within a
 * second, and a request costs at most one `stat` per file. */
export const PEM_FILE_INTERVAL_MS = 1_000;

/** What one request carries. */
export interface RequestCredentials {
  /** Headers to set (Authorization, Impersonate-*). */
  headers: [string, string][];
  /** Client certificate, PEM. */
  cert?: string;
  /** Its key, PEM. */
  key?: string;
  /** The exec plugin's credential it carries, if any. */
  exec?: ExecCredential;
}

/** A PEM given inline or as a file read once per change. */
export function pemReader(source: PemSource, what: string): () => string {
  if ("data" in source) return () => source.data;
  const file = new WatchedFile(source.file, what, { intervalMs: PEM_FILE_INTERVAL_MS });
  return () => file.text();
}

/** The credentials of one kubeconfig user. */
export class KubeCredentials {
  #user: KubeconfigUser;
  #tokenFile?: WatchedFile;
  #cert?: () => string;
  #key?: () => string;
  #exec?: ExecCredentials;

  /** `where` names the kubeconfig file(s) for messages; `cluster` is sent to exec plugins. */
  constructor(user: KubeconfigUser, where: string, cluster: () => ExecClusterInfo) {
    this.#user = user;
    const of = (field: string) =>
      `${field} of user ${JSON.stringify(user.name)} in kubeconfig ${where}`;
    if (user.tokenFile) {
      this.#tokenFile = new WatchedFile(user.tokenFile, of("tokenFile"), {
        intervalMs: TOKEN_FILE_INTERVAL_MS,
      });
    }
    if (user.cert) this.#cert = pemReader(user.cert, of("client-certificate"));
    if (user.key) this.#key = pemReader(user.key, of("client-key"));
    if (user.exec) {
      this.#exec = new ExecCredentials(user.exec, { user: user.name, kubeconfig: where, cluster });
    }
  }

  /** Runs of the exec plugin so far (0 without one). */
  get execRuns(): number {
    return this.#exec?.runs ?? 0;
  }

  /** What the next request carries; runs the exec plugin when its credential is missing or
   * expired. */
  async current(): Promise<RequestCredentials> {
    const headers: [string, string][] = [];
    let cert = this.#cert?.();
    let key = this.#key?.();
    let exec: ExecCredential | undefined;
    const token = this.#tokenFile ? this.#tokenFile.text().trim() : this.#user.token;
    if (token) headers.push(["Authorization", `Bearer ${token}`]);
    else if (this.#user.basic) {
      headers.push(["Authorization", basicAuth(this.#user.basic)]);
    } else if (this.#exec && !this.#cert) {
      // client-go's exec authenticator steps aside for a token, basic auth or a certificate.
      const c = exec = await this.#exec.get();
      if (c.token) headers.push(["Authorization", `Bearer ${c.token}`]);
      if (c.cert) [cert, key] = [c.cert, c.key];
    }
    const as = this.#user.impersonate;
    if (as?.user) headers.push(["Impersonate-User", as.user]);
    if (as?.uid) headers.push(["Impersonate-Uid", as.uid]);
    for (const g of as?.groups ?? []) headers.push(["Impersonate-Group", g]);
    return { headers, cert, key, exec };
  }

  /** Reads the token, certificate and key files now, so a missing one fails the start. */
  readFiles(): void {
    this.#tokenFile?.text();
    this.#cert?.();
    this.#key?.();
  }

  /** Kills a running exec plugin: the connection is closed. */
  close(): void {
    this.#exec?.close();
  }

  /** The server answered 401 (to a request that carried `used`, when known): the token file is
   * looked at and the plugin run again before the next request, as client-go does. */
  unauthorized(used?: RequestCredentials): void {
    this.#tokenFile?.invalidate();
    this.#exec?.unauthorized(used?.exec);
  }
}

/** The Authorization header of basic auth (`user:password`, UTF-8), as client-go sends it. */
function basicAuth({ username, password }: { username: string; password: string }): string {
  return `Basic ${
    btoa(String.fromCharCode(...new TextEncoder().encode(`${username}:${password}`)))
  }`;
}
