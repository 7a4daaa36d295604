/**
 * Field readers shared by the kubeconfig loader (lib/kubeconfig.ts) and its `exec` entry
 * (lib/exec_config.ts): a string field checked for type, with an error that names the field and
 * never quotes its value (it may be a credential), and file names resolved as kubectl does.
 *
 * @module
 */
import { ConfigError } from "./config.ts";

/** A parsed YAML mapping. */
export type Obj = Record<string, unknown>;

/** Whether `x` is a mapping. */
export function isObj(x: unknown): x is Obj {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** A string field, or undefined; anything else is an error that names the field only. */
export function str(body: Obj, field: string, where: string): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") {
    throw new ConfigError(`Cannot use kubeconfig ${where}: ${field} must be a string`);
  }
  return v;
}

/** A file name relative to the kubeconfig that names it, made absolute (kubectl resolves it
 * against that file's directory, not the working directory). */
export function absolute(path: string, kubeconfig: string): string {
  if (path.startsWith("/")) return path;
  const base = kubeconfig.startsWith("/") ? kubeconfig : `${Deno.cwd()}/${kubeconfig}`;
  return `${base.slice(0, base.lastIndexOf("/"))}/${path}`;
}
