/** Stopping at any moment: a stop signal that came while the sidecar was still starting (its
 * connection being made) stops it as soon as it has started, with nothing left running. */
import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { startSidecar } from "../../lib/sidecar.ts";

const CA = new URL("./testdata/ca.crt", import.meta.url).pathname;
const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", certificate-authority: ${CA}}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: ns}}]
current-context: x
`;

Deno.test("a stop signal that came during start-up ends the sidecar once started, within a second", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/kubeconfig`, KUBECONFIG);
    const config = loadConfig([
      `--kubeconfig=${dir}/kubeconfig`,
      "--service-name=web",
      "--listen-address=127.0.0.1",
      "--listen-port=0",
      "--log-level=error",
    ], { env: () => undefined });
    const stop = new AbortController();
    stop.abort();
    const sidecar = await startSidecar(config, { log: createLogger("error"), signal: stop.signal });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      sidecar.finished.then(() => "finished"),
      new Promise((r) => timer = setTimeout(() => r("still running"), 1_000)),
    ]).finally(() => clearTimeout(timer));
    assert.equal(outcome, "finished");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
