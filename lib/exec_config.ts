/**
 * The `exec` entry of a kubeconfig user (a client-go credential plugin: `aws eks get-token`,
 * `gke-gcloud-auth-plugin`, `kubelogin`, ...) read and checked as client-go checks it, so a
 * mistake is one line at start naming the file and field, not a failure at the first request.
 * Running the plugin is lib/exec_credential.ts.
 *
 * @module
 */
import { ConfigError } from "./config.ts";
import { absolute, str } from "./kubeconfig_fields.ts";

/** The ExecCredential versions client-go still speaks (v1alpha1 was removed in 1.24). */
export const EXEC_API_VERSIONS = [
  "client.authentication.k8s.io/v1",
  "client.authentication.k8s.io/v1beta1",
];

/** A kubeconfig user's `exec` entry. */
export interface ExecConfig {
  /** Where it was given, for messages: `file users["u"].user.exec`. */
  where: string;
  /** The command: a name looked up on PATH, or a path (relative ones resolved against the
   * kubeconfig's directory, as kubectl does when it contains a slash). */
  command: string;
  /** Its arguments. */
  args: string[];
  /** Environment variables added to the sidecar's own. */
  env: Record<string, string>;
  /** The ExecCredential apiVersion to send and expect. */
  apiVersion: string;
  /** Shown when the command is not found. */
  installHint?: string;
  /** Send the cluster (server, CA, proxy, exec extension) in KUBERNETES_EXEC_INFO. */
  provideClusterInfo: boolean;
  /** `Never`, `IfAvailable` (the default here, as for v1beta1) or `Always`. */
  interactiveMode: "Never" | "IfAvailable" | "Always";
}

/** Reads and checks an `exec` entry given in kubeconfig `file`. */
export function execConfig(raw: unknown, file: string, where: string): ExecConfig {
  const fail = (what: string) => new ConfigError(`Cannot use kubeconfig ${where}: ${what}`);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw fail("exec must be a mapping");
  }
  const body = raw as Record<string, unknown>;
  const command = str(body, "command", where);
  if (!command) throw fail("command is not set: set it to the credential plugin to run");
  const apiVersion = str(body, "apiVersion", where) ?? "";
  if (!EXEC_API_VERSIONS.includes(apiVersion)) {
    throw fail(
      `apiVersion ${JSON.stringify(apiVersion)} is not one of ${EXEC_API_VERSIONS.join(", ")}; ` +
        "set the one the plugin's documentation gives",
    );
  }
  const args = body.args ?? [];
  if (!Array.isArray(args) || args.some((a) => typeof a !== "string")) {
    throw fail("args must be a list of strings");
  }
  const env: Record<string, string> = {};
  const list = body.env ?? [];
  if (!Array.isArray(list)) throw fail("env must be a list of {name, value}");
  for (const [i, e] of list.entries()) {
    const name = typeof e === "object" && e !== null ? (e as Record<string, unknown>).name : "";
    const value = typeof e === "object" && e !== null ? (e as Record<string, unknown>).value : "";
    if (typeof name !== "string" || !name || typeof value !== "string") {
      // The value may be a secret: name the entry by its index only.
      throw fail(`env[${i}] must have a name and a string value`);
    }
    env[name] = value;
  }
  const mode = str(body, "interactiveMode", where) ?? "IfAvailable";
  if (mode !== "Never" && mode !== "IfAvailable" && mode !== "Always") {
    throw fail(`interactiveMode ${JSON.stringify(mode)} is not Never, IfAvailable or Always`);
  }
  if (mode === "Always") {
    throw fail(
      "interactiveMode Always needs a terminal, and the sidecar has no terminal (its stdin is " +
        "never one, so a prompt would hang); set interactiveMode to IfAvailable or Never, or " +
        "log in with the plugin beforehand",
    );
  }
  const provide = body.provideClusterInfo ?? false;
  if (typeof provide !== "boolean") throw fail("provideClusterInfo must be true or false");
  return {
    where,
    command: command.includes("/") ? absolute(command, file) : command,
    args: args as string[],
    env,
    apiVersion,
    installHint: str(body, "installHint", where),
    provideClusterInfo: provide,
    interactiveMode: mode,
  };
}
