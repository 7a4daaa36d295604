/**
 * How many requests one idle sidecar sends the API server, read from the API server's own
 * counters, for docs/performance.md's "The idle probe". Runs under the control plane:
 *
 * ```sh
 * .cache/bin/control-plane up -- tools/deno run --allow-all tools/probe_count.ts names 420
 * .cache/bin/control-plane up -- tools/deno run --allow-all tools/probe_count.ts selector 420
 * ```
 *
 * `names`: `--service-name=web` in one namespace (one watch); `selector`: `--service-selector`
 * over two namespaces (four watches). `apiserver_request_total` does not count `GET /version`,
 * so two FlowSchemas of the sidecar's ServiceAccount split its requests into the probes and the
 * rest, counted by `apiserver_flowcontrol_dispatched_requests_total`. Also prints the sidecar's
 * TCP connections to the API server (`ss -tnp`): one, however many watches (HTTP/2).
 *
 * @module
 */
import { createNamespace, createService } from "../tests/support/cluster/fixtures.ts";
import { kubeFetch, kubeOk } from "../tests/support/cluster/http.ts";
import { grantRole } from "../tests/support/cluster/rbac.ts";
import { testCluster } from "../tests/support/cluster/http.ts";
import { DISCOVERY_RULES, podMount, spawnSidecar } from "../tests/support/sidecar.ts";

const [mode, secondsArg = "420"] = Deno.args;
if (mode !== "names" && mode !== "selector") {
  console.error("usage: probe_count.ts names|selector [SECONDS]");
  Deno.exit(2);
}
const seconds = Number(secondsArg);
const SERVICE_RULES = [...DISCOVERY_RULES, {
  apiGroups: [""],
  resources: ["services"],
  verbs: ["get", "list", "watch"],
}];

/** The sidecar's FlowSchemas' dispatched-request counters, by schema. */
async function counters(): Promise<Map<string, number>> {
  const text = await (await kubeFetch("GET", "/metrics")).text();
  const m = new Map<string, number>();
  for (
    const [, schema, n] of text.matchAll(
      /^apiserver_flowcontrol_dispatched_requests_total\{flow_schema="(kpd-[^"]+)"[^}]*\} (\S+)$/gm,
    )
  ) m.set(schema!, Number(n));
  return m;
}

/** The sidecar's established connections to the API server's port. */
async function connections(pid: number): Promise<string[]> {
  const out = await new Deno.Command("ss", { args: ["-tnp"] }).output();
  const port = new URL(testCluster().server).port;
  return new TextDecoder().decode(out.stdout).split("\n")
    .filter((l) => l.includes(`pid=${pid},`) && l.includes(`:${port}`));
}

const ns1 = await createNamespace("probes-a");
await createService(ns1, "web", { labels: { tier: "db" } });
const mount = await podMount(ns1, { rules: mode === "names" ? DISCOVERY_RULES : [] });
let args = ["--service-name=web"];
if (mode === "selector") {
  const ns2 = await createNamespace("probes-b");
  await createService(ns2, "db", { labels: { tier: "db" } });
  for (const ns of [ns1, ns2]) {
    const subject = { kind: "ServiceAccount" as const, name: mount.serviceAccount, namespace: ns1 };
    await grantRole(ns, subject, SERVICE_RULES);
  }
  args = ["--service-selector=tier=db", `--namespaces=${ns1},${ns2}`];
}
const serviceAccount = { name: mount.serviceAccount, namespace: ns1 };
const schemas = {
  probes: `kpd-probes-${mount.serviceAccount}`,
  rest: `kpd-rest-${mount.serviceAccount}`,
};
for (
  const [name, precedence, rule] of [
    [schemas.probes, 100, {
      nonResourceRules: [{ verbs: ["get"], nonResourceURLs: ["/version"] }],
    }],
    [schemas.rest, 101, {
      nonResourceRules: [{ verbs: ["*"], nonResourceURLs: ["*"] }],
      resourceRules: [{
        verbs: ["*"],
        apiGroups: ["*"],
        resources: ["*"],
        namespaces: ["*"],
        clusterScope: true,
      }],
    }],
  ] as const
) {
  await kubeOk("POST", "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas", {
    body: {
      apiVersion: "flowcontrol.apiserver.k8s.io/v1",
      kind: "FlowSchema",
      metadata: { name },
      spec: {
        priorityLevelConfiguration: { name: "workload-low" },
        matchingPrecedence: precedence,
        distinguisherMethod: { type: "ByUser" },
        rules: [{ subjects: [{ kind: "ServiceAccount", serviceAccount }], ...rule }],
      },
    },
  });
}
// The API server's flow-control configuration catches up with new FlowSchemas in a moment.
await new Promise((r) => setTimeout(r, 3000));
const sidecar = await spawnSidecar({ env: mount.env, args });
try {
  await new Promise((r) => setTimeout(r, 5000));
  const conns = await connections(sidecar.pid);
  console.log(`${mode}: ${conns.length} TCP connection(s) to the API server`);
  const before = await counters();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = await counters();
  const windowS = (performance.now() - t0) / 1000;
  for (const [what, schema] of Object.entries(schemas)) {
    const n = (after.get(schema) ?? 0) - (before.get(schema) ?? 0);
    console.log(`${what}: ${n} in ${windowS.toFixed(0)} s, ${(n * 3600 / windowS).toFixed(0)}/h`);
  }
  console.log(`TCP connections at the end: ${(await connections(sidecar.pid)).length}`);
} finally {
  await sidecar.stop();
  await mount.remove();
}
