/**
 * Kubeconfig files for the kubeconfig-mode tests (tests/kubeconfig_test.ts): a kubeconfig as a
 * plain object (JSON is YAML, and kubectl reads it), with any user (token, token file, client
 * certificate, exec plugin), and the test's own exec plugin (tests/support/exec_plugin.sh)
 * driven through files in a temp dir, whose runs are counted. Also client certificates signed
 * by the control plane's CA with openssl, to rotate them.
 *
 * @module
 */
import { testCluster } from "./cluster/http.ts";

const PLUGIN = new URL("./exec_plugin.sh", import.meta.url).pathname;

/** A kubeconfig user entry, as kubectl spells its fields. */
export type KubeconfigUser = Record<string, unknown>;

/** Options of {@linkcode kubeconfigObject}. */
export interface KubeconfigObjectOptions {
  /** Server URL; default the control plane's. */
  server?: string;
  /** The cluster entry's fields besides server; default the control plane's CA as data. */
  cluster?: Record<string, unknown>;
  /** The context's namespace. */
  namespace?: string;
}

/** A kubeconfig with one cluster "k", one user "u" and one context "c" (the current one). */
export function kubeconfigObject(
  user: KubeconfigUser,
  options: KubeconfigObjectOptions = {},
): Record<string, unknown> {
  const c = testCluster();
  return {
    apiVersion: "v1",
    kind: "Config",
    "current-context": "c",
    clusters: [{
      name: "k",
      cluster: {
        server: options.server ?? c.server,
        ...(options.cluster ?? { "certificate-authority-data": btoa(c.caPem) }),
      },
    }],
    users: [{ name: "u", user }],
    contexts: [{
      name: "c",
      context: {
        cluster: "k",
        user: "u",
        ...(options.namespace ? { namespace: options.namespace } : {}),
      },
    }],
  };
}

/** The test's exec plugin: what it hands out, and what it was run with. */
export interface ExecPlugin {
  /** Its directory (token, mode, runs, ...). */
  dir: string;
  /** The kubeconfig `exec` entry that runs it. */
  exec: Record<string, unknown>;
  /** Hands out this token from now on. */
  setToken(token: string): Promise<void>;
  /** "token", "cert" (hands out crt and key), "fail" (exits 3) or "garbage" (not JSON). */
  setMode(mode: "token" | "cert" | "fail" | "garbage"): Promise<void>;
  /** Hands out this client certificate and key (PEM) in mode "cert". */
  setCert(crt: string, key: string): Promise<void>;
  /** Sets (or with undefined, removes) the expirationTimestamp it gives. */
  setExpires(at: Date | undefined): Promise<void>;
  /** The KUBERNETES_EXEC_INFO of each run so far, parsed ({} when it was not set). */
  runs(): Promise<Record<string, unknown>[]>;
  /** Removes its directory. */
  remove(): Promise<void>;
}

/** Options of {@linkcode execPlugin}. */
export interface ExecPluginOptions {
  /** ExecCredential apiVersion; default client.authentication.k8s.io/v1. */
  apiVersion?: string;
  /** Extra fields of the `exec` entry (installHint, provideClusterInfo, interactiveMode, ...). */
  exec?: Record<string, unknown>;
}

/** The kubeconfig `exec` entry that runs the test's exec plugin with its state in `dir`. */
export function pluginExecEntry(
  dir: string,
  apiVersion = "client.authentication.k8s.io/v1",
): Record<string, unknown> {
  return {
    apiVersion,
    command: PLUGIN,
    args: [apiVersion],
    env: [{ name: "KPD_PLUGIN_DIR", value: dir }],
    interactiveMode: "Never",
  };
}

/** Lays out the test's exec plugin in a temp dir. */
export async function execPlugin(options: ExecPluginOptions = {}): Promise<ExecPlugin> {
  const dir = await Deno.makeTempDir({ prefix: "kpd-plugin-" });
  const apiVersion = options.apiVersion ?? "client.authentication.k8s.io/v1";
  const write = async (name: string, text: string) => {
    await Deno.writeTextFile(`${dir}/${name}.tmp`, text);
    await Deno.rename(`${dir}/${name}.tmp`, `${dir}/${name}`);
  };
  return {
    dir,
    exec: { ...pluginExecEntry(dir, apiVersion), ...options.exec },
    setToken: (token) => write("token", token),
    setMode: (mode) => write("mode", mode),
    async setCert(crt, key) {
      await write("crt", crt);
      await write("key", key);
    },
    async setExpires(at) {
      if (at) await write("expires", at.toISOString().replace(/\.\d+Z$/, "Z"));
      else await Deno.remove(`${dir}/expires`).catch(() => {});
    },
    async runs() {
      const text = await Deno.readTextFile(`${dir}/runs`).catch(() => "");
      return text.split("\n").filter((l, i, all) => i < all.length - 1 || l !== "")
        .map((l) => (l ? JSON.parse(l) : {}));
    },
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Writes a kubeconfig object to `path` (mode 0600, as kubectl does). */
export async function writeKubeconfigObject(
  path: string,
  config: Record<string, unknown>,
): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(config, null, 2), { mode: 0o600 });
}

/**
 * A client certificate and key (PEM) for `user`, signed by the control plane's CA with openssl
 * (the API server trusts that CA for client certificates).
 */
export async function signClientCert(user: string): Promise<{ crt: string; key: string }> {
  const c = testCluster();
  const dir = await Deno.makeTempDir({ prefix: "kpd-cert-" });
  try {
    const run = async (args: string[]) => {
      const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" })
        .output();
      if (!out.success) {
        throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
      }
    };
    await run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${dir}/key`]);
    await run(["req", "-new", "-key", `${dir}/key`, "-subj", `/CN=${user}`, "-out", `${dir}/csr`]);
    // Extensions make it an X.509 v3 certificate: rustls refuses v1, openssl's default here.
    await Deno.writeTextFile(
      `${dir}/ext`,
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
    );
    await run([
      "x509",
      "-extfile",
      `${dir}/ext`,
      "-req",
      "-in",
      `${dir}/csr`,
      "-CA",
      c.caFile,
      "-CAkey",
      `${c.dir}/ca.key`,
      "-CAcreateserial",
      "-CAserial",
      `${dir}/serial`,
      "-days",
      "1",
      "-out",
      `${dir}/crt`,
    ]);
    return {
      crt: await Deno.readTextFile(`${dir}/crt`),
      key: await Deno.readTextFile(`${dir}/key`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
