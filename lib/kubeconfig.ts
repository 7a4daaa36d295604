/**
 * Kubeconfig files read as kubectl reads them: `KUBECONFIG=a:b` merged (empty and missing entries
 * skipped; per cluster, user and context name the first file that defines it wins;
 * `current-context` from the first file that sets one), relative file names resolved against the
 * file that gave them, and the chosen context resolved to its cluster and user. Only what the
 * sidecar uses is read. Every error is one ConfigError line naming the file and the field, and
 * never quotes a value of a credential field: a YAML syntax error gives its line and column, not
 * the parser's snippet of the text around it, and its warnings are not printed (they quote the
 * text too).
 *
 * @module
 */
import { ConfigError } from "./config.ts";
import { type ExecConfig, execConfig } from "./exec_config.ts";
import { absolute, isObj, type Obj, str } from "./kubeconfig_fields.ts";

/** A PEM text given inline (`*-data`, decoded) or as a file name (absolute). */
export type PemSource = { data: string } | { file: string };

/** The cluster of the chosen context. */
export interface KubeconfigCluster {
  /** Its name in the kubeconfig. */
  name: string;
  /** The API server's URL, without a trailing slash. */
  server: string;
  /** The CA that signed the server's certificate; unset: the platform's roots. */
  ca?: PemSource;
  /** `proxy-url`. */
  proxyUrl?: string;
  /** `extensions[client.authentication.k8s.io/exec].extension`, for exec plugins. */
  execExtension?: unknown;
}

/** The user of the chosen context (every field optional, as in kubectl). */
export interface KubeconfigUser {
  /** Its name in the kubeconfig ("" when the context names none). */
  name: string;
  /** `token`. */
  token?: string;
  /** `tokenFile`, absolute. */
  tokenFile?: string;
  /** `client-certificate(-data)`. */
  cert?: PemSource;
  /** `client-key(-data)`. */
  key?: PemSource;
  /** `username` and `password` (basic auth). */
  basic?: { username: string; password: string };
  /** `exec`. */
  exec?: ExecConfig;
  /** `as`, `as-uid`, `as-groups`: impersonation. */
  impersonate?: { user?: string; uid?: string; groups: string[] };
}

/** The chosen context, resolved. */
export interface Kubeconfig {
  /** The files read, for messages: "a" or "a:b". */
  where: string;
  /** The context's name. */
  context: string;
  /** The context's namespace. */
  namespace?: string;
  /** Its cluster. */
  cluster: KubeconfigCluster;
  /** Its user. */
  user: KubeconfigUser;
}

/** An entry of clusters/users/contexts with the file it came from. */
interface Entry {
  file: string;
  body: Obj;
  where: string;
}

/**
 * Reads the kubeconfig files of `paths` (`:`-separated, as KUBECONFIG) and resolves `context`
 * (default: the merged current-context).
 */
export async function loadKubeconfig(paths: string, context?: string): Promise<Kubeconfig> {
  // A dynamic import, so that bundling the in-cluster sidecar leaves the parser out.
  const { parse } = await import("yaml");
  const files = [...new Set(paths.split(":").filter((p) => p !== ""))];
  const docs = files.flatMap((file) => {
    const doc = readDoc(file, files.length > 1, parse);
    return doc ? [{ file, doc }] : [];
  });
  const where = files.join(":");
  if (docs.length === 0) {
    throw new ConfigError(
      `Cannot read kubeconfig ${where} (--kubeconfig / KUBECONFIG): none of its files exists`,
    );
  }
  const maps = {
    clusters: new Map<string, Entry>(),
    users: new Map<string, Entry>(),
    contexts: new Map<string, Entry>(),
  };
  let current: string | undefined;
  for (const { file, doc } of docs) {
    current ||= str(doc, "current-context", file);
    for (const kind of ["clusters", "users", "contexts"] as const) {
      for (const [name, entry] of entries(doc, kind, file)) {
        if (!maps[kind].has(name)) maps[kind].set(name, entry);
      }
    }
  }
  const name = context ?? current;
  if (!name) {
    throw new ConfigError(
      `Kubeconfig ${where} sets no current-context: set current-context or --context`,
    );
  }
  const ctx = maps.contexts.get(name);
  if (!ctx) {
    throw new ConfigError(
      `Kubeconfig ${where} has no context ${JSON.stringify(name)}: ` +
        `set --context or current-context to one of ${JSON.stringify([...maps.contexts.keys()])}`,
    );
  }
  const clusterName = str(ctx.body, "cluster", ctx.where) ?? "";
  const cluster = maps.clusters.get(clusterName);
  if (!cluster) {
    throw new ConfigError(
      `Kubeconfig ${where}: context ${JSON.stringify(name)} names cluster ` +
        `${JSON.stringify(clusterName)}, which no file of it defines`,
    );
  }
  const userName = str(ctx.body, "user", ctx.where) ?? "";
  const user = maps.users.get(userName);
  if (userName && !user) {
    throw new ConfigError(
      `Kubeconfig ${where}: context ${JSON.stringify(name)} names user ` +
        `${JSON.stringify(userName)}, which no file of it defines`,
    );
  }
  return {
    where,
    context: name,
    namespace: str(ctx.body, "namespace", ctx.where) || undefined,
    cluster: readCluster(clusterName, cluster),
    user: user ? readUser(userName, user) : { name: "" },
  };
}

/** The file's document, or undefined for a missing file among several (kubectl skips those). */
function readDoc(
  file: string,
  several: boolean,
  parse: (text: string, options: { logLevel: "error" }) => unknown,
): Obj | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    if (several && e instanceof Deno.errors.NotFound) return undefined;
    throw new ConfigError(
      `Cannot read kubeconfig ${file} (--kubeconfig / KUBECONFIG): ${(e as Error).message}`,
    );
  }
  let doc: unknown;
  try {
    // Errors only: the parser prints its warnings (an unknown tag or directive) to stderr with
    // the text around them, which may be a token.
    doc = parse(text, { logLevel: "error" });
  } catch (e) {
    // The parser's message quotes the text around the error, which may be a token: say where.
    const { linePos, code } = e as { linePos?: { line: number; col: number }[]; code?: string };
    const at = linePos?.[0]
      ? ` at line ${linePos[0].line}, column ${linePos[0].col} (${code})`
      : "";
    throw new ConfigError(`Cannot parse kubeconfig ${file}: not valid YAML${at}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError(`Cannot use kubeconfig ${file}: it is not a mapping (a Config)`);
  }
  return doc as Obj;
}

/** `kind` (clusters, users, contexts) as [name, entry], each checked for shape. */
function entries(doc: Obj, kind: string, file: string): [string, Entry][] {
  const list = doc[kind];
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) {
    throw new ConfigError(`Cannot use kubeconfig ${file}: ${kind} must be a list`);
  }
  const field = kind.slice(0, -1);
  return list.map((item, i) => {
    const at = `${kind}[${i}]`;
    if (!isObj(item)) {
      throw new ConfigError(`Cannot use kubeconfig ${file}: ${at} must be a mapping`);
    }
    const name = str(item, "name", `${file} ${at}`);
    if (!name) throw new ConfigError(`Cannot use kubeconfig ${file}: ${at} has no name`);
    const body = item[field] ?? {};
    if (!isObj(body)) {
      throw new ConfigError(`Cannot use kubeconfig ${file}: ${at}.${field} must be a mapping`);
    }
    return [name, { file, body, where: `${file} ${kind}[${JSON.stringify(name)}].${field}` }];
  });
}

function readCluster(name: string, { file, body, where }: Entry): KubeconfigCluster {
  const server = str(body, "server", where);
  if (!server) throw new ConfigError(`Cannot use kubeconfig ${where}: server is not set`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new ConfigError(`Cannot use kubeconfig ${where}: server is not a URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new ConfigError(
      `Cannot use kubeconfig ${where}: server must be an https:// or http:// URL`,
    );
  }
  if (body["insecure-skip-tls-verify"] === true) {
    throw new ConfigError(
      `Cannot use kubeconfig ${where}: insecure-skip-tls-verify is set, which Deno's HTTP client ` +
        "cannot do per connection; set certificate-authority or certificate-authority-data to " +
        "the API server's CA instead",
    );
  }
  const tlsServerName = str(body, "tls-server-name", where);
  if (tlsServerName) {
    throw new ConfigError(
      `Cannot use kubeconfig ${where}: tls-server-name ${JSON.stringify(tlsServerName)} is set, ` +
        "which Deno's HTTP client cannot send; set server to a URL whose host name the " +
        "certificate covers instead",
    );
  }
  const extensions = Array.isArray(body.extensions) ? body.extensions : [];
  const exec = extensions.find((x) => isObj(x) && x.name === "client.authentication.k8s.io/exec");
  return {
    name,
    server: server.replace(/\/+$/, ""),
    ca: pem(body, "certificate-authority", file, where),
    proxyUrl: str(body, "proxy-url", where) || undefined,
    execExtension: isObj(exec) ? exec.extension : undefined,
  };
}

function readUser(name: string, { file, body, where }: Entry): KubeconfigUser {
  const provider = body["auth-provider"];
  if (provider !== undefined && provider !== null) {
    const name = isObj(provider) ? str(provider, "name", where) : undefined;
    throw new ConfigError(
      `Cannot use kubeconfig ${where}: auth-provider ${JSON.stringify(name ?? "")} is not ` +
        "supported (kubectl dropped its gcp and azure providers); use an exec plugin " +
        "(gke-gcloud-auth-plugin, kubelogin, kubectl oidc-login) instead",
    );
  }
  const tokenFile = str(body, "tokenFile", where);
  const username = str(body, "username", where);
  const groups = body["as-groups"] ?? [];
  if (!Array.isArray(groups) || groups.some((g) => typeof g !== "string")) {
    throw new ConfigError(`Cannot use kubeconfig ${where}: as-groups must be a list of strings`);
  }
  if (groups.length > 1) {
    // fetch joins repeated headers into one ("a, b"), which the API server reads as one group.
    throw new ConfigError(
      `Cannot use kubeconfig ${where}: as-groups has ${groups.length} groups, and Deno's fetch ` +
        "can send only one Impersonate-Group header; keep one group",
    );
  }
  const as = str(body, "as", where);
  const asUid = str(body, "as-uid", where);
  return {
    name,
    token: str(body, "token", where) || undefined,
    tokenFile: tokenFile ? absolute(tokenFile, file) : undefined,
    cert: pem(body, "client-certificate", file, where),
    key: pem(body, "client-key", file, where),
    basic: username ? { username, password: str(body, "password", where) ?? "" } : undefined,
    exec: body.exec === undefined || body.exec === null
      ? undefined
      : execConfig(body.exec, file, `${where}.exec`),
    impersonate: as || asUid || groups.length
      ? { user: as || undefined, uid: asUid || undefined, groups: groups as string[] }
      : undefined,
  };
}

/** `field-data` (base64, wins as in kubectl) or `field` (a file name). */
function pem(body: Obj, field: string, file: string, where: string): PemSource | undefined {
  const data = str(body, `${field}-data`, where);
  if (data) {
    try {
      return {
        data: new TextDecoder().decode(Uint8Array.from(atob(data), (c) => c.charCodeAt(0))),
      };
    } catch {
      throw new ConfigError(`Cannot use kubeconfig ${where}: ${field}-data is not base64`);
    }
  }
  const path = str(body, field, where);
  return path ? { file: absolute(path, file) } : undefined;
}
