/**
 * `deno task demo`: the sidecar on a machine without a cluster. Runs under the control plane
 * (`control-plane up -- deno run tools/demo.ts`), creates Service "web" in namespace "demo"
 * with three Ready Pods, starts the sidecar against it on 127.0.0.1:8080, prints curl commands
 * to try, and every few seconds adds or removes a Pod. Ctrl-C stops everything.
 *
 * @module
 */
import {
  createNamespace,
  createPods,
  createService,
  forceDeletePod,
} from "../tests/support/cluster/fixtures.ts";
import { testCluster } from "../tests/support/cluster/http.ts";

/** How often a Pod comes or goes, so there is something to watch. */
const CHURN_INTERVAL_MS = 4_000;

const port = Deno.env.get("DEMO_PORT") ?? "8080";
const ns = await createNamespace("demo");
await createService(ns, "web");
let next = 0;
const pods: string[] = [];
const addPod = async () => {
  pods.push(
    ...await createPods(ns, 1, {
      labels: { app: "web" },
      nodeName: "demo-node",
      prefix: "web",
      start: next++,
    }),
  );
};
for (let i = 0; i < 3; i++) await addPod();

const sidecar = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-env",
    new URL("../main.ts", import.meta.url).pathname,
    `--kubeconfig=${testCluster().kubeconfig}`,
    `--namespace=${ns}`,
    "--service-name=web",
    `--listen-port=${port}`,
  ],
  stdin: "null",
}).spawn();

const base = `http://127.0.0.1:${port}`;
console.log(`
The sidecar watches Service web in namespace ${ns} of a real API server.
Try, in another terminal:
  curl -s ${base}/endpoints | jq .
  curl -s ${base}/endpoints/last_updated
  curl -s ${base}/readyz
  curl -si ${base}/endpoints -H 'If-None-Match: <the ETag of the last answer>'
kubectl works too: KUBECONFIG=${testCluster().kubeconfig} kubectl -n ${ns} get pods,endpointslices
A Pod comes or goes every ${CHURN_INTERVAL_MS / 1000} s. Ctrl-C stops everything.
`);

const timer = setInterval(async () => {
  try {
    if (pods.length > 5 || (pods.length > 1 && Math.random() < 0.5)) {
      const victim = pods.shift()!;
      await forceDeletePod(ns, victim);
      console.log(`demo: removed Pod ${victim}`);
    } else {
      await addPod();
      console.log(`demo: added Pod ${pods.at(-1)}`);
    }
  } catch (e) {
    console.error(`demo: ${(e as Error).message}`);
  }
}, CHURN_INTERVAL_MS);

const stop = () => {
  clearInterval(timer);
  try {
    sidecar.kill("SIGTERM");
  } catch {
    // Already gone (Ctrl-C reaches the whole process group).
  }
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
const status = await sidecar.status;
clearInterval(timer);
Deno.exit(status.success ? 0 : status.code);
