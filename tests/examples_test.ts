/**
 * The manifests in examples/ against the real control plane: the API server accepts every one
 * (strict field validation), each Deployment's sidecar container is hardened and sized against the
 * image's heap limit, and the sidecar, run with a token of the example's own ServiceAccount and
 * the example's environment, becomes ready and serves the endpoints of Pods made Ready, while
 * that ServiceAccount can do nothing more than its Roles allow.
 *
 * Each test applies every manifest again, mapping each namespace the examples name (`default`,
 * `shop`, `shared`) to a fresh one. There is no kubelet and no Deployment controller: the
 * Deployments are stored but make no Pods, so the tests create Pods with their template's
 * labels, with a written status, for the EndpointSlice controller to pick up.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import {
  createNamespace,
  createPods,
  podIPv4,
  waitForEndpointSlices,
} from "./support/cluster/fixtures.ts";
import { kube, kubeOk, testCluster } from "./support/cluster/http.ts";
import { mintToken } from "./support/cluster/rbac.ts";
import type { KubeObject } from "./support/cluster/types.ts";
import { waitFor } from "./support/cluster/wait.ts";
import { spawnSidecar } from "./support/sidecar.ts";
import { LIVE_TEST as T } from "./support/options.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const EXAMPLES = `${ROOT}/examples`;
const ENV = "KUBERNETES_POD_DISCOVERY_";

// ---------------------------------------------------------------------------------------------
// The shapes read from the manifests

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}

interface Probe {
  httpGet?: { path?: string; port?: number | string; host?: string };
}

interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type?: string };
}

interface Container {
  name: string;
  image: string;
  restartPolicy?: string;
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
}

interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  securityContext?: SecurityContext;
  containers: Container[];
  initContainers?: Container[];
}

interface Deployment extends KubeObject {
  spec: {
    selector: { matchLabels?: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}

interface RoleBinding extends KubeObject {
  subjects?: { kind: string; name: string; namespace?: string }[];
}

/** A manifest document and the file it came from. */
interface Manifest {
  file: string;
  object: KubeObject;
}

// ---------------------------------------------------------------------------------------------
// Reading and applying

/** Every document of every YAML file in examples/, in file order. */
function readExamples(): Manifest[] {
  const files = [...Deno.readDirSync(EXAMPLES)]
    .filter((e) => e.isFile && /\.ya?ml$/.test(e.name))
    .map((e) => e.name)
    .sort();
  const out: Manifest[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(Deno.readTextFileSync(`${EXAMPLES}/${file}`))) {
      if (doc.errors.length > 0) {
        throw new Error(`examples/${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
      }
      const object = doc.toJS() as KubeObject | null;
      if (object !== null) out.push({ file, object });
    }
  }
  return out;
}

const MANIFESTS = readExamples();

/** The example namespace of an object (`default` when it names none). */
function namespaceOf(o: KubeObject): string {
  return o.metadata?.namespace ?? "default";
}

/** Service names as the sidecar reads them: `name` or `namespace/name`, comma-separated. */
function serviceNames(value: string, ownNamespace: string): { namespace: string; name: string }[] {
  return value.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
    const [a, b] = s.split("/");
    return b === undefined ? { namespace: ownNamespace, name: a! } : { namespace: a!, name: b };
  });
}

/** The sidecar container of a Pod spec: the one running this project's image. */
function sidecarOf(spec: PodSpec): Container {
  const all = [...(spec.initContainers ?? []), ...spec.containers];
  const found = all.filter((c) => c.image.includes("kubernetes-pod-discovery"));
  assert.equal(found.length, 1, "exactly one container runs the kubernetes-pod-discovery image");
  return found[0]!;
}

/** Every namespace the examples name, in metadata, RoleBinding subjects or service names. */
function exampleNamespaces(): string[] {
  const set = new Set<string>();
  for (const { object } of MANIFESTS) {
    set.add(namespaceOf(object));
    for (const s of (object as RoleBinding).subjects ?? []) if (s.namespace) set.add(s.namespace);
    if (object.kind === "Deployment") {
      const env = sidecarOf((object as Deployment).spec.template.spec).env ?? [];
      const names = env.find((e) => e.name === ENV + "SERVICE_NAME")?.value ?? "";
      for (const s of serviceNames(names, namespaceOf(object))) set.add(s.namespace);
    }
  }
  return [...set].sort();
}

/** An object with every example namespace replaced by the test's own. */
function rewrite(o: KubeObject, ns: Map<string, string>): KubeObject {
  const copy = structuredClone(o);
  const to = (n: string) => ns.get(n) ?? assert.fail(`namespace ${n} is not mapped`);
  copy.metadata = { ...copy.metadata, namespace: to(namespaceOf(o)) };
  for (const s of (copy as RoleBinding).subjects ?? []) {
    if (s.namespace) s.namespace = to(s.namespace);
  }
  if (copy.kind === "Deployment") {
    for (const e of sidecarOf((copy as Deployment).spec.template.spec).env ?? []) {
      if (e.name === ENV + "SERVICE_NAME" && e.value) {
        e.value = e.value.split(",").map((s) =>
          s.includes("/") ? `${to(s.split("/")[0]!)}/${s.split("/")[1]}` : s
        ).join(",");
      }
      if ((e.name === ENV + "NAMESPACE" || e.name === ENV + "NAMESPACES") && e.value) {
        e.value = e.value.split(",").map((s) => to(s.trim())).join(",");
      }
    }
  }
  return copy;
}

const discovery = new Map<string, { name: string; kind: string; namespaced: boolean }[]>();

/** The collection path of a kind in a namespace, from the API server's discovery. */
async function collectionPath(apiVersion: string, kind: string, ns: string): Promise<string> {
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  if (!discovery.has(base)) {
    const list = await kubeOk<{ resources: { name: string; kind: string; namespaced: boolean }[] }>(
      "GET",
      base,
    );
    discovery.set(base, list.resources);
  }
  const r = discovery.get(base)!.find((x) => x.kind === kind && !x.name.includes("/"));
  assert.ok(r, `the API server does not serve ${kind} in ${apiVersion}`);
  assert.ok(r.namespaced, `${kind} is cluster-scoped: the examples must stay in their namespace`);
  return `${base}/namespaces/${ns}/${r.name}`;
}

/** The examples as applied: the namespace map and every object as the test created it. */
interface Applied {
  ns: Map<string, string>;
  objects: { file: string; object: KubeObject }[];
}

/** Creates fresh namespaces for the examples' and creates every manifest in them. */
async function applyExamples(): Promise<Applied> {
  const ns = new Map<string, string>();
  for (const n of exampleNamespaces()) ns.set(n, await createNamespace(`ex-${n}`));
  const objects: Applied["objects"] = [];
  for (const { file, object } of MANIFESTS) {
    const o = rewrite(object, ns);
    const path = await collectionPath(o.apiVersion!, o.kind!, o.metadata!.namespace!);
    const res = await kube("POST", `${path}?fieldValidation=Strict`, { body: o });
    assert.ok(
      res.status === 201,
      `examples/${file}: ${o.kind} ${o.metadata?.name}: HTTP ${res.status} ${
        JSON.stringify(res.body)
      }`,
    );
    objects.push({ file, object: o });
  }
  return { ns, objects };
}

/** Finds an applied object by kind, namespace and name. */
function find<K extends KubeObject>(
  applied: Applied,
  kind: string,
  namespace: string,
  name: string,
): K | undefined {
  return applied.objects.map((x) => x.object).find((o) =>
    o.kind === kind && o.metadata?.namespace === namespace && o.metadata?.name === name
  ) as K | undefined;
}

/** Bytes of a Kubernetes memory quantity such as 96Mi or 100M. */
function bytes(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$/.exec(quantity);
  assert.ok(m, `cannot read the quantity ${quantity}`);
  const unit: Record<string, number> = {
    "": 1,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    k: 1e3,
    M: 1e6,
    G: 1e9,
  };
  return Number(m[1]) * unit[m[2] ?? ""]!;
}

/** The V8 heap limit baked into the image (image/deno-flags.txt), in bytes. */
function bakedHeapBytes(): number {
  const flags = Deno.readTextFileSync(`${ROOT}/image/deno-flags.txt`);
  const m = /^--v8-flags=.*--max-heap-size=(\d+)/m.exec(flags);
  assert.ok(m, "image/deno-flags.txt sets --max-heap-size");
  return Number(m[1]) * 2 ** 20;
}

/** The port number a probe's httpGet.port names in a container. */
function probePort(c: Container, port: number | string | undefined): number | undefined {
  if (typeof port === "number") return port;
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

/** A SubjectAccessReview for a ServiceAccount: is it allowed? */
async function allowed(
  sa: { namespace: string; name: string },
  attrs: { verb: string; resource: string; group?: string; namespace?: string },
): Promise<boolean> {
  const review = await kubeOk<{ status: { allowed: boolean } }>(
    "POST",
    "/apis/authorization.k8s.io/v1/subjectaccessreviews",
    {
      body: {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SubjectAccessReview",
        spec: {
          user: `system:serviceaccount:${sa.namespace}:${sa.name}`,
          groups: [
            "system:serviceaccounts",
            `system:serviceaccounts:${sa.namespace}`,
            "system:authenticated",
          ],
          resourceAttributes: {
            verb: attrs.verb,
            group: attrs.group ?? "",
            resource: attrs.resource,
            namespace: attrs.namespace ?? "",
          },
        },
      },
    },
  );
  return review.status.allowed;
}

// ---------------------------------------------------------------------------------------------
// Tests

const DEPLOYMENTS = MANIFESTS.filter((m) => m.object.kind === "Deployment");

Deno.test("examples/ has the nginx example as a native sidecar, one in the Go service's plain-container form, and a multi-service example", () => {
  const files = new Set(MANIFESTS.map((m) => m.file));
  for (
    const f of [
      "nginx-deployment.yaml",
      "nginx-plain-container.yaml",
      "nginx-service.yaml",
      "nginx-rbac.yaml",
    ]
  ) {
    assert.ok(files.has(f), `examples/${f}`);
  }
  const form = (file: string) => {
    const d = DEPLOYMENTS.find((m) => m.file === file)!.object as Deployment;
    const spec = d.spec.template.spec;
    const c = sidecarOf(spec);
    return spec.initContainers?.includes(c) && c.restartPolicy === "Always" ? "native" : "plain";
  };
  assert.equal(form("nginx-deployment.yaml"), "native");
  assert.equal(form("multi-service.yaml"), "native");
  assert.equal(form("nginx-plain-container.yaml"), "plain");
  const plain = sidecarOf(
    (DEPLOYMENTS.find((m) => m.file === "nginx-plain-container.yaml")!.object as Deployment).spec
      .template.spec,
  );
  assert.deepEqual(plain.livenessProbe?.httpGet, { path: "/health", port: 8080 }, "as Go's");
  assert.ok(
    DEPLOYMENTS.some((d) => {
      const env = sidecarOf((d.object as Deployment).spec.template.spec).env ?? [];
      const names = env.find((e) => e.name === ENV + "SERVICE_NAME")?.value ?? "";
      return names.includes(",") && names.includes("/");
    }),
    "a Deployment whose sidecar watches several Services, one as namespace/name",
  );
});

Deno.test(
  "the API server accepts every manifest in examples/ with strict field validation",
  T,
  async () => {
    const applied = await applyExamples();
    assert.equal(applied.objects.length, MANIFESTS.length);
  },
);

for (const { file, object } of DEPLOYMENTS) {
  const name = object.metadata!.name!;
  const spec = (object as Deployment).spec.template.spec;

  Deno.test(`examples/${file}: the sidecar of ${name} is hardened, probed and sized for the image`, () => {
    const c = sidecarOf(spec);
    const pod = spec.securityContext ?? {};
    const sc = { ...pod, ...c.securityContext };
    assert.equal(sc.runAsNonRoot, true);
    assert.equal(sc.runAsUser, 65532);
    assert.equal(sc.readOnlyRootFilesystem, true);
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.notEqual(sc.privileged, true);
    assert.deepEqual(sc.capabilities?.drop, ["ALL"]);
    assert.equal(sc.capabilities?.add, undefined);
    assert.equal(sc.seccompProfile?.type, "RuntimeDefault");
    assert.equal(spec.automountServiceAccountToken, true);
    assert.ok(spec.serviceAccountName && spec.serviceAccountName !== "default");
    assert.doesNotMatch(c.image, /:latest$|^[^:]*$/, "a pinned image tag");

    // Probes on a port that serves the health routes through the Pod's IP: the default
    // listener (every interface; the data answers loopback only) or the probe listener.
    const env = new Map((c.env ?? []).map((e) => [e.name, e.value]));
    const listen = Number(env.get(ENV + "LISTEN_PORT") ?? "8080");
    const probe = Number(env.get(ENV + "PROBE_PORT") ?? "0");
    const address = env.get(ENV + "LISTEN_ADDRESS");
    const reachable = new Set([probe, address === undefined ? listen : 0].filter((p) => p > 0));
    assert.ok(reachable.size > 0, "a listener the kubelet can reach");
    assert.equal(env.get(ENV + "ALLOW_REMOTE_DATA"), undefined, "the data stays in the Pod");
    assert.match(c.livenessProbe?.httpGet?.path ?? "", /^\/(livez|health)$/);
    assert.equal(c.readinessProbe?.httpGet?.path, "/readyz");
    for (const p of [c.livenessProbe, c.readinessProbe, c.startupProbe]) {
      if (!p?.httpGet) continue;
      assert.ok(reachable.has(probePort(c, p.httpGet.port)!), `probe port ${p.httpGet.port}`);
      assert.equal(p.httpGet.host, undefined, "the kubelet probes the Pod's IP");
    }
    // A native sidecar is ready before the app starts: a startupProbe on /readyz.
    if (c.restartPolicy === "Always") {
      assert.ok(spec.initContainers?.includes(c), "restartPolicy Always only in initContainers");
      assert.equal(c.startupProbe?.httpGet?.path, "/readyz");
    }

    const requests = c.resources?.requests ?? {};
    const limits = c.resources?.limits ?? {};
    assert.ok(requests.cpu && requests.memory && limits.cpu && limits.memory);
    assert.ok(bytes(requests.memory) <= bytes(limits.memory));
    assert.ok(
      bytes(limits.memory) >= 2 * bakedHeapBytes(),
      `the memory limit ${limits.memory} is under twice the image's V8 heap limit`,
    );
  });

  Deno.test(
    `examples/${file}: the sidecar of ${name}, with its ServiceAccount's token and its env, serves the endpoints of Ready Pods`,
    T,
    async () => {
      const applied = await applyExamples();
      const ns = applied.ns.get(namespaceOf(object))!;
      const deployment = find<Deployment>(applied, "Deployment", ns, name)!;
      const podSpec = deployment.spec.template.spec;
      const c = sidecarOf(podSpec);
      const sa = podSpec.serviceAccountName!;
      assert.ok(find(applied, "ServiceAccount", ns, sa), `ServiceAccount ${sa} is in examples/`);

      // Pods for every Service the sidecar watches: the Deployment's own from its template,
      // the others from their Service's selector.
      const env: Record<string, string> = {};
      // This Pod's name and IPs: those of the first Pod made from the Deployment's template.
      const podFields: { name: string; field: string }[] = [];
      for (const e of c.env ?? []) {
        const field = e.valueFrom?.fieldRef?.fieldPath;
        if (e.value !== undefined) env[e.name] = e.value;
        else if (field === "spec.nodeName") env[e.name] = "ex-node";
        else if (field === "metadata.namespace") env[e.name] = ns;
        else if (field && ["metadata.name", "status.podIP", "status.podIPs"].includes(field)) {
          podFields.push({ name: e.name, field });
        } else assert.fail(`cannot give ${e.name} a value in this test`);
      }
      let self: { service: string; name: string; ip: string } | undefined;
      const watched = serviceNames(env[ENV + "SERVICE_NAME"]!, ns);
      const ports = [...(podSpec.initContainers ?? []), ...podSpec.containers]
        .flatMap((x) => x.ports ?? []);
      const expected = new Map<string, string[]>();
      for (const [i, w] of watched.entries()) {
        const svc = find<KubeObject & { spec: { selector: Record<string, string> } }>(
          applied,
          "Service",
          w.namespace,
          w.name,
        );
        assert.ok(svc, `Service ${w.namespace}/${w.name} is in examples/`);
        const selector = svc.spec.selector;
        const own = Object.entries(selector).every(([k, v]) =>
          deployment.spec.template.metadata.labels[k] === v
        );
        const labels = own ? deployment.spec.template.metadata.labels : selector;
        const start = 10 * i;
        const names = await createPods(w.namespace, 2, {
          labels,
          nodeName: "ex-node",
          prefix: `${w.name}-pod`,
          start,
          containerPorts: own ? ports : undefined,
        });
        assert.equal(names.length, 2);
        await waitForEndpointSlices(
          w.namespace,
          w.name,
          (s) => s.some((x) => (x.endpoints ?? []).filter((e) => e.conditions?.ready).length === 2),
        );
        expected.set(`${w.namespace}/${w.name}`, [start, start + 1].map(podIPv4).sort());
        if (own && w.namespace === ns && !self) {
          self = { service: `${w.namespace}/${w.name}`, name: names[0]!, ip: podIPv4(start) };
        }
      }
      for (const f of podFields) {
        assert.ok(self, `${f.name} needs a Pod of the Deployment behind a watched Service`);
        env[f.name] = f.field === "metadata.name" ? self.name : self.ip;
      }

      const token = await mintToken(ns, sa);
      const dir = await Deno.makeTempDir({ prefix: "kpd-sa-" });
      await Deno.writeTextFile(`${dir}/token`, token);
      await Deno.writeTextFile(`${dir}/namespace`, ns);
      await Deno.writeTextFile(`${dir}/ca.crt`, testCluster().caPem);
      const api = new URL(testCluster().server);
      const sidecar = await spawnSidecar({
        env: {
          ...env,
          KUBERNETES_SERVICE_HOST: api.hostname,
          KUBERNETES_SERVICE_PORT: api.port,
          [ENV + "SERVICE_ACCOUNT_DIR"]: dir,
          // Tests run side by side: any free port instead of the example's, and no probe
          // listener (tests/sidecar_test.ts covers it).
          [ENV + "LISTEN_PORT"]: "0",
          [ENV + "PROBE_PORT"]: "0",
        },
      });
      try {
        await waitFor(async () => (await sidecar.request("/readyz")).status === 200, {
          message: "/readyz 200",
        }).catch((e) => {
          throw new Error(`${(e as Error).message}; sidecar log:\n${sidecar.stderr()}`);
        });
        const first = watched[0]!;
        const r = await sidecar.request("/endpoints");
        assert.equal(r.status, 200);
        const body = r.json();
        assert.equal(body.metadata.namespace, first.namespace);
        assert.equal(body.metadata.name, first.name);
        assert.deepEqual(
          body.subsets[0].addresses.map((a: { ip: string }) => a.ip).sort(),
          expected.get(`${first.namespace}/${first.name}`),
        );
        for (const w of watched) {
          const v = await sidecar.request(`/v1/services/${w.namespace}/${w.name}`);
          assert.equal(v.status, 200, v.text);
          const ips = v.json().endpoints.flatMap((e: { addresses: string[] }) => e.addresses);
          assert.deepEqual(ips.sort(), expected.get(`${w.namespace}/${w.name}`));
          if (self?.service !== `${w.namespace}/${w.name}`) continue;
          // The example's identity settings: this Pod is marked, and left out on request.
          const body = v.json();
          assert.equal(body.self, "ready");
          assert.deepEqual(
            body.endpoints.filter((e: { self?: boolean }) => e.self)
              .flatMap((e: { addresses: string[] }) => e.addresses),
            [self.ip],
          );
          const peers = await sidecar.request(`/v1/services/${w.namespace}/${w.name}?exclude=self`);
          assert.equal(peers.status, 200, peers.text);
          assert.ok(!peers.text.includes(`"${self.ip}"`));
        }
        assert.equal(await sidecar.stop(), 0);
        const text = sidecar.stderr();
        assert.doesNotMatch(text, /forbidden|backing off/i);
        assert.deepEqual(sidecar.logs.filter((l) => l.level === "warn" || l.level === "error"), []);
      } finally {
        await sidecar.stop("SIGKILL");
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  Deno.test(
    `examples/${file}: the ServiceAccount of ${name} can read EndpointSlices where it watches and nothing else`,
    T,
    async () => {
      const applied = await applyExamples();
      const ns = applied.ns.get(namespaceOf(object))!;
      const deployment = find<Deployment>(applied, "Deployment", ns, name)!;
      const sa = { namespace: ns, name: deployment.spec.template.spec.serviceAccountName! };
      const env = sidecarOf(deployment.spec.template.spec).env ?? [];
      const watched = new Set(
        serviceNames(env.find((e) => e.name === ENV + "SERVICE_NAME")!.value!, ns)
          .map((w) => w.namespace),
      );
      const other = await createNamespace("ex-other");
      const slices = { group: "discovery.k8s.io", resource: "endpointslices" };
      for (const n of watched) {
        for (const verb of ["get", "list", "watch"]) {
          assert.ok(await allowed(sa, { ...slices, verb, namespace: n }), `${verb} slices in ${n}`);
        }
        for (const verb of ["create", "update", "patch", "delete", "deletecollection"]) {
          assert.equal(await allowed(sa, { ...slices, verb, namespace: n }), false, verb);
        }
        for (const resource of ["pods", "secrets", "configmaps", "services", "endpoints"]) {
          for (const verb of ["get", "list", "watch"]) {
            assert.equal(
              await allowed(sa, { resource, verb, namespace: n }),
              false,
              `${verb} ${resource} in ${n}`,
            );
          }
        }
      }
      for (const verb of ["get", "list", "watch"]) {
        assert.equal(await allowed(sa, { ...slices, verb, namespace: other }), false);
        assert.equal(await allowed(sa, { ...slices, verb }), false, `${verb} slices cluster-wide`);
      }
      // And with the token itself, as the sidecar would send it.
      const token = await mintToken(ns, sa.name);
      const base = "/apis/discovery.k8s.io/v1/namespaces";
      assert.equal((await kube("GET", `${base}/${ns}/endpointslices`, { token })).status, 200);
      assert.equal((await kube("GET", `${base}/${other}/endpointslices`, { token })).status, 403);
      assert.equal(
        (await kube("GET", `/api/v1/namespaces/${ns}/secrets`, { token })).status,
        403,
      );
      assert.equal((await kube("GET", `/api/v1/namespaces/${ns}/pods`, { token })).status, 403);
    },
  );
}
