/**
 * The image's build may read only the service-account mount (image/deno-flags.txt) and embeds no
 * `@kubernetes/client-node`: kubeconfig mode cannot work there. This decides it at config time,
 * from the permissions the process holds, so a kubeconfig given to the image (or the
 * `~/.kube/config` fallback outside a pod) is refused in one line that says what to do, not with
 * Deno's permission text or an unhandled import error. A `deno run` with read access is never
 * refused here.
 *
 * @module
 */

/** What decides the mode: the kubeconfig setting and the process environment. */
export interface ModeInputs {
  /** The kubeconfig setting (flag or KUBECONFIG), if any. */
  kubeconfig?: string;
  /** Environment lookup. */
  env: (name: string) => string | undefined;
  /** Whether the process may read `path`. Default: Deno's permission state for it. */
  canRead?: (path: string) => boolean;
}

/** The one line refusing kubeconfig mode in a build that cannot serve it; undefined if it can. */
export function inClusterOnlyRefusal(inputs: ModeInputs): string | undefined {
  const canRead = inputs.canRead ??
    ((path: string) => Deno.permissions.querySync({ name: "read", path }).state === "granted");
  const howTo = "this build serves in-cluster mode only; run from source for a kubeconfig";
  if (inputs.kubeconfig !== undefined) {
    return canRead(inputs.kubeconfig)
      ? undefined
      : `Cannot use kubeconfig ${inputs.kubeconfig}: ${howTo}`;
  }
  if (inputs.env("KUBERNETES_SERVICE_HOST")) return undefined;
  const home = inputs.env("HOME");
  if (home === undefined || canRead(`${home}/.kube/config`)) return undefined;
  return `Not in a pod (KUBERNETES_SERVICE_HOST is unset), and ${howTo}`;
}
