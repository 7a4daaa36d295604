/**
 * Runs a kubeconfig's exec credential plugin as client-go does: the ExecCredential request in
 * KUBERNETES_EXEC_INFO (`interactive: false`, since the sidecar's stdin is never a terminal and
 * a prompt would hang; the cluster when `provideClusterInfo`), the kubeconfig's `env` added to
 * the sidecar's own, its answer checked (kind, apiVersion, a token or a certificate and key).
 * The credential is kept until its `expirationTimestamp` (forever without one) and dropped at
 * once on a 401, so the next request runs the plugin again; concurrent callers share one run,
 * which is bounded in time and output (lib/exec_process.ts).
 * A failure is one line naming the plugin, the user and the kubeconfig (with `installHint` when
 * the command is missing) and never quotes what the plugin printed on stdout, which may hold a
 * credential.
 *
 * @module
 */
import type { ExecConfig } from "./exec_config.ts";
import { MAX_STDOUT_BYTES, type PluginOutput, runPlugin } from "./exec_process.ts";
import { pluginEnv } from "./trust.ts";

/** A plugin that has not answered after this long is killed: one that waits for a login it
 * cannot prompt for must not hold the watches forever, and a cloud CLI fetching a token over a
 * slow network answers well within it. */
export const EXEC_TIMEOUT_MS = 60_000;

/** A 401 this soon after the plugin answered does not run it again: the watches of several
 * namespaces that fail together with the old credential share one run. */
export const MIN_RERUN_MS = 1_000;

/** What a plugin handed out. */
export interface ExecCredential {
  /** Bearer token. */
  token?: string;
  /** Client certificate, PEM. */
  cert?: string;
  /** Its key, PEM. */
  key?: string;
  /** `expirationTimestamp` in ms since the epoch; undefined: until a 401. */
  expiresAt?: number;
}

/** The cluster sent to a plugin with `provideClusterInfo` (client-go's `Cluster`). */
export interface ExecClusterInfo {
  /** API server URL. */
  server: string;
  /** The CA, PEM (sent base64 as certificate-authority-data). */
  ca?: string;
  /** `proxy-url`. */
  proxyUrl?: string;
  /** The cluster's exec extension. */
  config?: unknown;
}

/** Options of {@linkcode ExecCredentials}. */
export interface ExecCredentialsOptions {
  /** The user's name, for messages. */
  user: string;
  /** The kubeconfig file(s), for messages. */
  kubeconfig: string;
  /** The cluster, sent when the exec entry sets provideClusterInfo. */
  cluster: () => ExecClusterInfo;
  /** Clock. Default: `Date.now`. */
  now?: () => number;
  /** A run not over after this long is killed. Default: {@linkcode EXEC_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/** A plugin that failed: its message is the one line to log. */
export class ExecPluginError extends Error {
  /** Makes the error for one failed run. */
  constructor(message: string) {
    super(message);
    this.name = "ExecPluginError";
  }
}

/** The credential of one kubeconfig user's exec plugin, run when needed. */
export class ExecCredentials {
  #config: ExecConfig;
  #o: ExecCredentialsOptions;
  #now: () => number;
  #cached?: ExecCredential;
  #obtainedAt = 0;
  #pending?: Promise<ExecCredential>;
  #closed = new AbortController();
  /** Runs so far. */
  runs = 0;

  /** Keeps nothing yet: the plugin runs at the first {@linkcode get}. */
  constructor(config: ExecConfig, options: ExecCredentialsOptions) {
    this.#config = config;
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The credential: the one kept while it has not expired, else a new run's. */
  get(): Promise<ExecCredential> {
    const c = this.#cached;
    if (c && (c.expiresAt === undefined || this.#now() < c.expiresAt)) return Promise.resolve(c);
    return this.#pending ??= this.#run().finally(() => this.#pending = undefined);
  }

  /**
   * The server refused a credential: the next {@linkcode get} runs the plugin again. Given the
   * credential the refused request carried (as client-go does), only that one is dropped, so a
   * newer one is kept; without it, a credential got in the last {@linkcode MIN_RERUN_MS} is kept.
   */
  unauthorized(used?: ExecCredential): void {
    if (used ? used === this.#cached : this.#now() - this.#obtainedAt >= MIN_RERUN_MS) {
      this.#cached = undefined;
    }
  }

  /** Kills a running plugin (the sidecar stops), and any later one at once. */
  close(): void {
    this.#closed.abort();
  }

  async #run(): Promise<ExecCredential> {
    this.runs++;
    const cfg = this.#config;
    const out = await this.#spawn();
    const timeoutMs = this.#o.timeoutMs ?? EXEC_TIMEOUT_MS;
    if (out.timedOut) {
      throw this.#error(
        `gave no answer within ${timeoutMs / 1000} s and was killed; if it waits for a login, ` +
          "log in with it beforehand",
      );
    }
    if (out.tooLong) {
      throw this.#error(`printed more than ${MAX_STDOUT_BYTES} bytes and was killed`);
    }
    if (out.code !== 0 || out.signal) {
      const said = lastLine(out.stderr);
      throw this.#error(
        out.signal
          ? `killed by ${out.signal}`
          : `exited with code ${out.code}${said ? `: ${said}` : ""}`,
      );
    }
    const credential = parseCredential(new TextDecoder().decode(out.stdout), cfg.apiVersion);
    if (typeof credential === "string") throw this.#error(credential);
    this.#cached = credential;
    this.#obtainedAt = this.#now();
    return credential;
  }

  async #spawn(): Promise<PluginOutput> {
    const cfg = this.#config;
    const info = { kind: "ExecCredential", apiVersion: cfg.apiVersion, spec: this.#spec() };
    try {
      return await runPlugin(cfg.command, {
        args: cfg.args,
        // The sidecar's environment as it was before the root store was narrowed (lib/trust.ts).
        env: { ...pluginEnv(), ...cfg.env, KUBERNETES_EXEC_INFO: JSON.stringify(info) },
        timeoutMs: this.#o.timeoutMs ?? EXEC_TIMEOUT_MS,
        signal: this.#closed.signal,
      });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        const hint = cfg.installHint?.replace(/\s+/g, " ").trim();
        throw this.#error(`not found${hint ? `; ${hint}` : ""}`);
      }
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        throw this.#error(
          `not allowed to run: ${(e as Error).message.split("\n")[0]} (run with --allow-run, ` +
            "as `deno task start` does)",
        );
      }
      throw this.#error(`cannot run: ${(e as Error).message.split("\n")[0]}`);
    }
  }

  #spec(): Record<string, unknown> {
    const spec: Record<string, unknown> = { interactive: false };
    if (this.#config.provideClusterInfo) {
      const c = this.#o.cluster();
      const cluster: Record<string, unknown> = { server: c.server };
      if (c.ca) cluster["certificate-authority-data"] = btoa(c.ca);
      if (c.proxyUrl) cluster["proxy-url"] = c.proxyUrl;
      if (c.config !== undefined) cluster.config = c.config;
      spec.cluster = cluster;
    }
    return spec;
  }

  #error(what: string): ExecPluginError {
    return new ExecPluginError(
      `Cannot get credentials from exec plugin ${JSON.stringify(this.#config.command)} of user ` +
        `${JSON.stringify(this.#o.user)} in kubeconfig ${this.#o.kubeconfig}: ${what}`,
    );
  }
}

/** The last non-empty line of a plugin's stderr, at most 200 characters. */
function lastLine(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  return (lines.at(-1) ?? "").slice(0, 200);
}

/** The credential in a plugin's stdout, or what is wrong with it (never quoting it). */
export function parseCredential(stdout: string, apiVersion: string): ExecCredential | string {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    return "printed no ExecCredential (its output is not JSON)";
  }
  const d = (typeof doc === "object" && doc !== null ? doc : {}) as Record<string, unknown>;
  if (d.kind !== "ExecCredential") {
    return "printed no ExecCredential (its output's kind is not ExecCredential)";
  }
  if (d.apiVersion !== apiVersion) {
    return `answered with another apiVersion than the kubeconfig's ${apiVersion}; ` +
      "set exec.apiVersion to the one the plugin speaks";
  }
  const s = (typeof d.status === "object" && d.status !== null ? d.status : {}) as Record<
    string,
    unknown
  >;
  const text = (
    k: string,
  ) => (typeof s[k] === "string" && s[k] !== "" ? s[k] as string : undefined);
  const [token, cert, key] = [text("token"), text("clientCertificateData"), text("clientKeyData")];
  if (!token && !cert) return "printed an ExecCredential with neither a token nor a certificate";
  if (!cert !== !key) {
    return "printed an ExecCredential with a certificate but no key, or a key but no certificate";
  }
  let expiresAt: number | undefined;
  if (s.expirationTimestamp !== undefined && s.expirationTimestamp !== null) {
    expiresAt = typeof s.expirationTimestamp === "string" ? Date.parse(s.expirationTimestamp) : NaN;
    if (Number.isNaN(expiresAt)) {
      return "printed an ExecCredential whose expirationTimestamp is not an RFC 3339 time";
    }
  }
  return { token, cert, key, expiresAt };
}
