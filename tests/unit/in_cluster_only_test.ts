/** Kubeconfig mode in a build that may read only the service-account mount: one line, not a crash. */
import assert from "node:assert/strict";
import { inClusterOnlyRefusal } from "../../lib/in_cluster_only.ts";

const env = (vars: Record<string, string>) => (n: string) => vars[n];
const nothing = () => false;
const everything = () => true;

Deno.test("a kubeconfig the build may not read is refused in one line saying to run from source", () => {
  const line = inClusterOnlyRefusal({ kubeconfig: "/kc", env: env({}), canRead: nothing });
  assert.equal(
    line,
    "Cannot use kubeconfig /kc: this build serves in-cluster mode only; run from source for a kubeconfig",
  );
});

Deno.test("outside a pod, a build that may not read ~/.kube/config says so instead of 'not found'", () => {
  const line = inClusterOnlyRefusal({ env: env({ HOME: "/" }), canRead: nothing });
  assert.match(line!, /KUBERNETES_SERVICE_HOST is unset.*in-cluster mode only; run from source/);
});

Deno.test("in a pod, or with read access, nothing is refused", () => {
  const pod = env({ HOME: "/", KUBERNETES_SERVICE_HOST: "10.0.0.1" });
  assert.equal(inClusterOnlyRefusal({ env: pod, canRead: nothing }), undefined);
  assert.equal(inClusterOnlyRefusal({ env: env({ HOME: "/h" }), canRead: everything }), undefined);
  assert.equal(
    inClusterOnlyRefusal({ kubeconfig: "/kc", env: env({}), canRead: everything }),
    undefined,
  );
});

Deno.test("by default the decision is this process's read permission", () => {
  // The unit tests run with --allow-all: a kubeconfig is readable, so not refused.
  assert.equal(inClusterOnlyRefusal({ kubeconfig: "/kc", env: env({}) }), undefined);
});
