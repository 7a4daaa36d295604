/**
 * Scenario `scale`: a sidecar on one Service of many endpoints (real Pods, the controller's
 * slices) and on many small Services (named, and with --all-services), per variant: time to
 * ready, idle memory, and CPU time per update, each update awaited with a blocking query so that
 * no polling cost is in the figure. Then the long --service-name probes (bench/scale_selector.ts).
 *
 * @module
 */
import { setPodReady } from "../tests/support/cluster/fixtures.ts";
import { kubeOk } from "../tests/support/cluster/http.ts";
import type { Context } from "./_context.ts";
import { manyServices, podService } from "./_fixtures.ts";
import { indexes, SliceWatch } from "./_observers.ts";
import { load, startSidecar, type Variant } from "./_processes.ts";
import { fetchUrlLimit, selectorOf, selectorProbes } from "./scale_selector.ts";
import type { ScaleCase } from "./types.ts";
import { KeepAliveClient } from "./_http.ts";
import { procCpuMs, procMemory, round, sleep, summarize } from "./util.ts";

interface CaseSetup {
  ns: string;
  env: Record<string, string>;
  args: string[];
  /** A Service whose /v1 view is loaded before the idle reading. */
  first: string;
  /** Makes the k-th change; returns the Service it changed. */
  update: (k: number) => Promise<string>;
}

/** A zone no endpoint is in: a blocking query pinned to it answers with no endpoints, so it
 * signals the update without making the sidecar serialize the Service. */
const NO_SUCH_ZONE = "kpd-bench-no-such-zone";

/** One case: ready, memory, then CPU time per update over `scaleUpdates` updates. */
async function scaleCase(ctx: Context, variant: Variant, c: ScaleCase, s: CaseSetup) {
  ctx.log(`scale: ${c.label} (${c.mode}, ${variant})`);
  const sc = await startSidecar(ctx, variant, { env: s.env, args: s.args, readyTimeoutMs: 60_000 });
  if (sc.readyMs === undefined) {
    c.failure = (JSON.stringify(sc.warnings()[0]) ?? sc.stderr()).slice(0, 800);
    ctx.log(`scale: ${c.label}: not ready in 60 s: ${c.failure}`);
    await sc.stop();
    return c;
  }
  c.ready = true;
  c.readyMs = round(sc.readyMs, 1);
  await sleep(1000);
  const atReady = procMemory(sc.pid);
  // /endpoints needs a named Service (404 with --all-services): load the /v1 view of one.
  await load(sc.url, 100, { path: `/v1/services/${s.ns}/${s.first}` });
  await sleep(ctx.sizes.idleWaitMs);
  c.memory = { atReady, idle: procMemory(sc.pid) };
  const known = await indexes(sc.url);
  const idle0 = procCpuMs(sc.pid);
  await sleep(3000);
  c.idleCpuMsPerS = round((procCpuMs(sc.pid) - idle0) / 3, 2);
  const client = await KeepAliveClient.open(sc.port);
  const watch = new SliceWatch();
  await watch.open(s.ns, c.services === 1 ? s.first : undefined);
  await sleep(1000);
  // First with no reader of the body: each update is awaited by a blocking query whose filter
  // (a zone no endpoint has) answers with no endpoints, so the figure is the update's own cost
  // (watch event, merge, views, listeners), as goal 4 defines it. Then the same number of
  // updates, each awaited by a blocking query that receives the whole /v1 body.
  const series = async (from: number, query: string) => {
    const latencies: number[] = [], sidecarPart: number[] = [];
    const cpu0 = procCpuMs(sc.pid);
    for (let k = from; k < from + ctx.sizes.scaleUpdates; k++) {
      const tWrite = performance.timeOrigin + performance.now();
      const key = `${s.ns}/${await s.update(k)}`;
      const r = await client.get(`/v1/services/${key}?index=${known.get(key)}&wait=15s${query}`);
      const index = Number(r.headers["x-discovery-index"]);
      if (index === known.get(key)) throw new Error(`scale: ${key}: no change within 15 s`);
      known.set(key, index);
      latencies.push(r.headAt - tWrite);
      const tEvent = await watch.arrival(index);
      if (tEvent !== undefined) sidecarPart.push(r.headAt - tEvent);
    }
    const cpu = procCpuMs(sc.pid) - cpu0;
    return { cpuMsPerUpdate: round(cpu / ctx.sizes.scaleUpdates, 2), latencies, sidecarPart };
  };
  const cheap = await series(0, `&state=all&zone=${NO_SUCH_ZONE}`);
  const full = await series(ctx.sizes.scaleUpdates, "");
  client.close();
  await watch.close();
  c.updates = ctx.sizes.scaleUpdates;
  c.cpuMsPerUpdate = cheap.cpuMsPerUpdate;
  c.cpuMsPerUpdateWholeBody = full.cpuMsPerUpdate;
  c.writeToServed = summarize(cheap.latencies);
  c.eventToServed = summarize(cheap.sidecarPart);
  c.eventToServedWholeBody = summarize(full.sidecarPart);
  c.hwmAfterUpdatesMB = procMemory(sc.pid).hwmMB;
  ctx.log(
    `scale: ${c.label} (${variant}): ready ${c.readyMs} ms, idle RSS ${c.memory.idle.rssMB} MB, ` +
      `${c.cpuMsPerUpdate} CPU ms/update (${c.cpuMsPerUpdateWholeBody} with the whole body read), ` +
      `event→served p50 ${c.eventToServed.p50} ms`,
  );
  await sc.stop();
  return c;
}

/** Fills `results.scale`. */
export async function scale(ctx: Context): Promise<void> {
  const pods = ctx.sizes.bigPods;
  const big = await podService(ctx, `web${pods}`, pods);
  const many = await manyServices(ctx, ctx.sizes.manyServices);
  const count = many.names.length;
  // Each write flips the Service's first endpoint (all start ready), so each is a change.
  const ready = new Map(many.names.map((n) => [n, true]));
  const patch = async (k: number) => {
    const service = many.names[(k * 17) % count]!;
    ready.set(service, !ready.get(service));
    const path = `/apis/discovery.k8s.io/v1/namespaces/${many.ns}/endpointslices/${service}-000`;
    await kubeOk("PATCH", path, {
      contentType: "application/json-patch+json",
      body: [{ op: "replace", path: "/endpoints/0/conditions/ready", value: ready.get(service) }],
    });
    return service;
  };
  // The readiness each update of the big Service's Pods last wrote (all start ready).
  const podReady = new Map<string, boolean>();
  const cases: ScaleCase[] = [];
  let offset = 0;
  for (const variant of ctx.variants) {
    const base = { variant, ready: false };
    cases.push(
      await scaleCase(ctx, variant, {
        ...base,
        label: `1 Service, ${pods.toLocaleString("en-US")} endpoints`,
        mode: `--service-name=${big.service}`,
        source: `${pods} Pods; the EndpointSlice controller's ${Math.ceil(pods / 100)} slices`,
        services: 1,
        slices: Math.ceil(pods / 100),
        endpoints: pods,
        selectorChars: selectorOf([big.service]).length,
      }, {
        ns: big.ns,
        env: big.env,
        args: [],
        first: big.service,
        // Toggle one Pod's readiness: the controller rewrites its slice of 100 endpoints.
        update: async (k) => {
          const pod = `${big.service}-${(Math.floor(k / 2) * 97) % pods}`;
          podReady.set(pod, !(podReady.get(pod) ?? true));
          await setPodReady(big.ns, pod, podReady.get(pod)!);
          return big.service;
        },
      }),
    );
    for (const allServices of [false, true]) {
      const from = offset;
      offset += 2 * ctx.sizes.scaleUpdates;
      cases.push(
        await scaleCase(ctx, variant, {
          ...base,
          label: `${count.toLocaleString("en-US")} Services of 3 endpoints`,
          mode: allServices ? "--all-services" : `--service-name=svc-0000,...`,
          source: "hand-written slices (one per Service)",
          services: count,
          slices: count,
          endpoints: count * 3,
          selectorChars: allServices ? 0 : selectorOf(many.names).length,
        }, {
          ns: many.ns,
          env: allServices
            ? many.mount.env
            : { ...many.mount.env, KUBERNETES_POD_DISCOVERY_SERVICE_NAME: many.names.join(",") },
          args: allServices ? ["--all-services"] : [],
          first: many.names[0]!,
          // Other Services than the previous case's, so that every write is a change.
          update: (k) => patch(k + from),
        }),
      );
    }
  }
  ctx.results.scale = {
    podCreation: [big.creation],
    cases,
    ...(ctx.sizes.selectorProbes
      ? { selectorProbes: await selectorProbes(ctx, many), fetchUrlLimit: await fetchUrlLimit() }
      : {}),
  };
}
