/**
 * A child process for tests/unit/trust_test.ts: connects with lib/kube_client.ts (a kubeconfig
 * given as the first argument, or in-cluster with the service-account directory given as
 * `--in-cluster=DIR,HOST,PORT`), requests /version once and prints "accepted" or "refused". Run
 * in its own process because Deno builds its root store once per process.
 *
 * @module
 */
import { connect } from "../../lib/kube_client.ts";

const arg = Deno.args[0] ?? "";
let options: Parameters<typeof connect>[0];
if (arg.startsWith("--in-cluster=")) {
  const [dir, host, port] = arg.slice("--in-cluster=".length).split(",");
  const env: Record<string, string> = {
    KUBERNETES_SERVICE_HOST: host,
    KUBERNETES_SERVICE_PORT: port,
  };
  options = { serviceAccountDir: dir, env: (n) => env[n] };
} else {
  options = { kubeconfig: arg, serviceAccountDir: "/nonexistent" };
}
const conn = await connect(options);
try {
  const r = await conn.fetch("/version");
  await r.body?.cancel();
  console.log("accepted");
} catch {
  console.log("refused");
} finally {
  conn.close();
}
