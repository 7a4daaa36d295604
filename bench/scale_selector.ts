/**
 * Part of scenario `scale`: how the length of --service-name's label selector limits the
 * sidecar. Deno's fetch refuses URLs of 65,535 characters or more; three sidecars (the shipped
 * variant) watch svc-0000 and made-up names sized so that a selector-filtered list URL and watch
 * URL are both under the limit, the list under and the watch over, and both over. For each:
 * ready? does a change of svc-0000 reach it?
 *
 * @module
 */
import { kubeOk, testCluster } from "../tests/support/cluster/http.ts";
import type { EndpointSlice } from "../tests/support/cluster/types.ts";
import type { Context } from "./_context.ts";
import type { ManyServices } from "./_fixtures.ts";
import { startSidecar } from "./_processes.ts";
import { indexes } from "./_observers.ts";
import type { SelectorProbe } from "./types.ts";
import { sleep } from "./util.ts";

/** The label selector that names these Services (as lib/sidecar.ts writes it). */
export function selectorOf(names: string[]): string {
  return names.length === 1
    ? `kubernetes.io/service-name=${names[0]}`
    : `kubernetes.io/service-name in (${names.join(",")})`;
}

/** The sidecar's list and watch URLs (API server address included) for these names. */
function requestUrlChars(ns: string, names: string[]): { list: number; watch: number } {
  const q = new URLSearchParams({ limit: "500", resourceVersion: "0" });
  q.set("labelSelector", selectorOf(names));
  const path = `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?${q}`;
  const list = testCluster().server.length + path.length;
  // The watch asks watch=1&allowWatchBookmarks=true&resourceVersion=RV&timeoutSeconds=T instead
  // of limit=500&resourceVersion=0 (lib/reflector.ts): 46 characters more with a 6-digit RV.
  return { list, watch: list + 46 };
}

/** `svc-0000` and made-up names of 63 characters until the list URL is `target` long. */
function namesForUrl(ns: string, target: number): string[] {
  const names = ["svc-0000"];
  for (let i = 0;; i++) {
    const name = `absent-service-${String(i).padStart(48, "0")}`;
    if (requestUrlChars(ns, [...names, name]).list > target) break;
    names.push(name);
  }
  // Each name costs its length and an encoded comma (%2C); a last, shorter name fills the rest.
  const rest = target - requestUrlChars(ns, names).list - 3;
  if (rest >= 1) names.push("z" + "0".repeat(rest - 1));
  return names;
}

/** Whether Deno's fetch sends URLs of 65,534 and 65,535 characters to a local listener. */
export async function fetchUrlLimit(): Promise<string> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const base = `http://127.0.0.1:${(l.addr as Deno.NetAddr).port}/`;
  const accept = (async () => {
    for await (const c of l) c.close();
  })();
  const attempt = async (chars: number) => {
    try {
      await fetch(base + "x".repeat(chars - base.length));
      return "sent";
    } catch (e) {
      const m = String(e).split("\n")[0]!.slice(0, 40);
      return m.startsWith("TypeError: Invalid URL") ? `refused (${m}…)` : "sent";
    }
  };
  const ok = await attempt(65_534), fail = await attempt(65_535);
  l.close();
  await accept.catch(() => {});
  return `65,534: ${ok}; 65,535: ${fail}`;
}

/** Three probes in the namespace of the many Services. */
export async function selectorProbes(ctx: Context, many: ManyServices): Promise<SelectorProbe[]> {
  const out: SelectorProbe[] = [];
  for (const target of [60_000, 65_510, 65_600]) {
    const names = namesForUrl(many.ns, target);
    const urls = requestUrlChars(many.ns, names);
    ctx.log(`selector probe: ${names.length} names, list URL ${urls.list}, watch ${urls.watch}`);
    const sc = await startSidecar(ctx, ctx.variants[0]!, {
      env: { ...many.mount.env, KUBERNETES_POD_DISCOVERY_SERVICE_NAME: names.join(",") },
      readyTimeoutMs: 10_000,
    });
    const p: SelectorProbe = {
      names: names.length,
      listUrlChars: urls.list,
      watchUrlChars: urls.watch,
      ready: sc.readyMs !== undefined,
    };
    await sleep(3000);
    const warn = sc.warnings()[0];
    if (warn) p.warning = `${warn.msg}: ${String(warn.reason ?? warn.error ?? "").slice(0, 90)}…`;
    if (p.ready) {
      // Flip svc-0000's first endpoint and see whether the sidecar's view follows in 5 s.
      const path = `/apis/discovery.k8s.io/v1/namespaces/${many.ns}/endpointslices/svc-0000-000`;
      const slice = await kubeOk<EndpointSlice>("GET", path);
      const was = slice.endpoints?.[0]?.conditions?.ready !== false;
      const before = (await indexes(sc.url)).get(`${many.ns}/svc-0000`);
      await kubeOk("PATCH", path, {
        contentType: "application/json-patch+json",
        body: [{ op: "replace", path: "/endpoints/0/conditions/ready", value: !was }],
      });
      const r = await fetch(`${sc.url}/v1/services/${many.ns}/svc-0000?index=${before}&wait=5s`);
      await r.body?.cancel();
      p.seesChanges = Number(r.headers.get("x-discovery-index")) !== before;
    }
    ctx.log(`selector probe: ready ${p.ready}, sees changes ${p.seesChanges}, ${p.warning ?? ""}`);
    out.push(p);
    await sc.stop();
  }
  return out;
}
