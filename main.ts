/**
 * kubernetes-pod-discovery: watches the EndpointSlices of Kubernetes Services and serves their
 * endpoints over HTTP on localhost. Wiring only: parse settings, start, handle signals.
 *
 * @module
 */
import { ConfigError, helpText, loadConfig } from "./lib/config.ts";
import { inClusterOnlyRefusal } from "./lib/in_cluster_only.ts";
import { captureConsole, createLogger } from "./lib/log.ts";
import { startSidecar } from "./lib/sidecar.ts";

/** How long a graceful stop may take before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 5_000;

async function main(): Promise<number> {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(helpText());
    return 0;
  }
  const controller = new AbortController();
  let signals = 0;
  let started = false;
  const onSignal = () => {
    // Still starting (making the connection): nothing is served or held yet, so nothing to
    // drain; a stop is a clean one.
    if (!started) Deno.exit(0);
    // First signal: stop gracefully. Second: exit at once.
    if (++signals > 1) Deno.exit(1);
    controller.abort();
    setTimeout(() => Deno.exit(1), SHUTDOWN_GRACE_MS);
  };
  // Always installed: Deno as PID 1 without a SIGTERM listener does not stop cleanly.
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    const config = loadConfig(Deno.args);
    const refusal = inClusterOnlyRefusal({
      kubeconfig: config.kubeconfig,
      env: (n) => Deno.env.get(n),
    });
    if (refusal) throw new ConfigError(refusal);
    const log = createLogger(config.logLevel);
    const sidecar = await startSidecar(config, { log, signal: controller.signal });
    started = true;
    // From here on the log is JSON only: what the runtime prints goes through it too.
    captureConsole(log);
    await sidecar.finished;
    log.log("info", "stopped", {});
    return 0;
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`kubernetes-pod-discovery: ${e.message}`);
      return 2;
    }
    if (e instanceof Deno.errors.AddrInUse) {
      console.error(`kubernetes-pod-discovery: cannot listen: ${e.message}`);
      return 1;
    }
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      console.error(
        `kubernetes-pod-discovery: missing permission: ${(e as Error).message} ` +
          "(the image's baked permissions are in image/deno-flags.txt)",
      );
      return 1;
    }
    throw e;
  }
}

Deno.exit(await main());
