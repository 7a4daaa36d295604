/**
 * A sidecar that knows its own Pod, against the real control plane: Pods get their status as a
 * kubelet would write it and the EndpointSlice controller makes the slices. The sidecar sees its
 * Pod marked, leaves it out with `?exclude=self` (endpoints, targets, SSE, blocking queries),
 * wakes a blocking query on its own readiness flip only for a client that sees itself, uses and
 * logs the hostname and mount fallback, and warns once about an IP setting its endpoint
 * contradicts; on a single-stack and on a dual-stack Service.
 */
import assert from "node:assert/strict";
import {
  createNamespace,
  createPods,
  createService,
  podIPv4,
  podIPv6,
  setPodReady,
  waitForEndpointSlices,
} from "./support/cluster/fixtures.ts";
import { uniqueName, waitFor } from "./support/cluster/wait.ts";
import { podMount, type SidecarProcess, spawnSidecar } from "./support/sidecar.ts";
import { type SseMessage, strictReader } from "./support/sse_client.ts";
import { LIVE_TEST as T } from "./support/options.ts";

const CONTRADICTION = "pod identity contradicts an endpoint";

interface Endpoint {
  addresses: string[];
  ready: boolean;
  self?: boolean;
  targetRef?: { name: string };
}

/** Ready Pods ring-0..2 behind Service ring; ring-0 is the sidecar's own. */
async function ring(dual: boolean) {
  const ns = await createNamespace(dual ? "self-dual" : "self");
  await createService(
    ns,
    "ring",
    dual ? { ipFamilies: ["IPv4", "IPv6"], ipFamilyPolicy: "RequireDualStack" } : {},
  );
  const ips = (i: number) => dual ? [podIPv4(i), podIPv6(i)] : [podIPv4(i)];
  await createPods(ns, 3, {
    labels: { app: "ring" },
    nodeName: uniqueName("self-node"),
    prefix: "ring",
    ips,
  });
  const families = dual ? 2 : 1;
  await waitForEndpointSlices(
    ns,
    "ring",
    (s) =>
      s.flatMap((x) => x.endpoints ?? []).filter((e) => e.conditions?.ready).length ===
        3 * families,
  );
  const mount = await podMount(ns);
  return { ns, ips, families, mount };
}

async function get(sidecar: SidecarProcess, path: string) {
  const r = await sidecar.request(path);
  assert.equal(r.status, 200, `${path}: ${r.text}`);
  return { index: Number(r.headers.get("x-discovery-index")), body: r.json(), text: r.text };
}

/** Every address of the endpoints of an answer. */
function addresses(body: { endpoints: Endpoint[] }): string[] {
  return body.endpoints.flatMap((e) => e.addresses).sort();
}

/** An SSE stream of the sidecar, recording its events. */
function stream(sidecar: SidecarProcess, path: string) {
  const events: SseMessage[] = [];
  const reader = strictReader(sidecar.url + path, { onMessage: (m) => events.push(m) });
  return { events, close: () => reader.close() };
}

async function scenario(dual: boolean): Promise<void> {
  const { ns, ips, families, mount } = await ring(dual);
  const base = `/v1/services/${ns}/ring`;
  const mine = ips(0).sort();
  const sidecar = await spawnSidecar({
    env: { ...mount.env, POD_NAME: "ring-0", POD_NAMESPACE: ns, POD_IPS: ips(0).join(",") },
    args: ["--service-name=ring"],
  });
  const streams: { close(): void }[] = [];
  try {
    const identity = await sidecar.waitLog((l) => l.msg === "pod identity");
    assert.deepEqual(identity.from, {
      name: "POD_NAME",
      namespace: "POD_NAMESPACE",
      ips: "POD_IPS",
    });
    await waitFor(async () => (await sidecar.request(base)).status === 200);

    // Marked: exactly this Pod's endpoints (one per family), and the Service says ready.
    const all = await get(sidecar, `${base}?state=all`);
    assert.equal(all.body.self, "ready");
    const marked = all.body.endpoints.filter((e: Endpoint) => e.self);
    assert.equal(marked.length, families);
    assert.deepEqual(addresses({ endpoints: marked }), mine);
    assert.ok(marked.every((e: Endpoint) => e.targetRef?.name === "ring-0"));
    const list = (await sidecar.request("/v1/services")).json();
    assert.equal(list.services[0].self, "ready");
    // The Go service's route is as it was: no marks.
    assert.doesNotMatch((await sidecar.request("/endpoints")).text, /"self"/);

    // Left out of endpoints and targets.
    const peers = await get(sidecar, `${base}?exclude=self&port=http`);
    assert.deepEqual(addresses(peers.body), [...ips(1), ...ips(2)].sort());
    const targets = [1, 2].flatMap((i) => ips(i)).map((a) =>
      a.includes(":") ? `[${a}]:8080` : `${a}:8080`
    );
    assert.deepEqual(peers.body.targets.sort(), targets.sort());
    assert.equal(peers.body.self, undefined);

    const seeing = stream(sidecar, `/v1/watch/${ns}/ring`);
    const excluded = stream(sidecar, `/v1/watch/${ns}/ring?exclude=self`);
    streams.push(seeing, excluded);
    await waitFor(() => Promise.resolve(seeing.events.length > 0 && excluded.events.length > 0));
    assert.ok(excluded.events.every((m) => mine.every((a) => !m.data.includes(`"${a}"`))));

    // This Pod's readiness flip: wakes the query that sees it, not the one that excluded itself.
    const before = await get(sidecar, base);
    let excludedAnswer: { index: number; body: { endpoints: Endpoint[] } } | undefined;
    const waiting = get(sidecar, `${base}?exclude=self&index=${peers.index}&wait=60s`)
      .then((a) => excludedAnswer = a);
    const woken = get(sidecar, `${base}?index=${before.index}&wait=60s`);
    const excludedBeforeFlip = excluded.events.length;
    await setPodReady(ns, "ring-0", false);
    const flipped = await woken;
    assert.ok(flipped.index > before.index);
    // Both families' slices (one change each on a dual-stack Service) have had the flip.
    await waitFor(async () => {
      const now = await get(sidecar, base);
      return now.body.self === "not-ready" &&
        addresses(now.body).join() === [...ips(1), ...ips(2)].sort().join();
    });
    await waitFor(() =>
      Promise.resolve(seeing.events.some((m) => m.data.includes('"self":"not-ready"')))
    );
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(excludedAnswer, undefined, "the excluded blocking query slept through the flip");
    assert.deepEqual(
      excluded.events.slice(excludedBeforeFlip),
      [],
      "the stream with exclude=self had no event for the flip",
    );
    const unchanged = await get(sidecar, `${base}?exclude=self`);
    assert.equal(unchanged.index, peers.index, "the excluded client's index did not move");
    const excludedEvents = excluded.events.length;

    // A peer's flip wakes it, with the index of that change.
    await setPodReady(ns, "ring-1", false);
    await waiting;
    assert.ok(excludedAnswer!.index > peers.index);
    assert.ok(mine.every((a) => !addresses(excludedAnswer!.body).includes(a)));
    await waitFor(async () =>
      addresses((await get(sidecar, `${base}?exclude=self`)).body).join() === ips(2).sort().join()
    );
    await waitFor(() => Promise.resolve(excluded.events.length > excludedEvents));
    for (const m of excluded.events) {
      assert.ok(mine.every((a) => !m.data.includes(`"${a}"`)), `this Pod in ${m.data}`);
    }
    assert.ok(excluded.events.slice(excludedEvents).every((m) => Number(m.id) > peers.index));
    assert.deepEqual(sidecar.logs.filter((l) => l.msg === CONTRADICTION), []);
  } finally {
    for (const s of streams) s.close();
    await sidecar.stop();
  }

  // Without the settings: the hostname and the mount's namespace, logged once.
  const fallback = await spawnSidecar({
    env: { ...mount.env, HOSTNAME: "ring-0" },
    args: ["--service-name=ring"],
  });
  try {
    const line = await fallback.waitLog((l) => l.msg === "pod identity");
    assert.equal(line.name, "ring-0");
    assert.equal(line.namespace, ns);
    assert.deepEqual(line.from, { name: "hostname", namespace: `${mount.dir}/namespace` });
    assert.match(String(line.note), /hostname/);
    await waitFor(async () => (await fallback.request(`${base}?state=all`)).status === 200);
    const body = (await get(fallback, `${base}?state=all`)).body;
    assert.equal(body.self, "not-ready");
    assert.deepEqual(
      addresses({ endpoints: body.endpoints.filter((e: Endpoint) => e.self) }),
      mine,
    );
    assert.equal(fallback.logs.filter((l) => l.msg === "pod identity").length, 1);
  } finally {
    await fallback.stop();
  }

  // An IP setting this Pod's endpoint contradicts: warned once, and still not a peer.
  const wrong = dual ? ["10.99.0.1", "fd00:99::1"] : ["10.99.0.1"];
  const contradicted = await spawnSidecar({
    env: { ...mount.env, POD_NAME: "ring-0", POD_NAMESPACE: ns, POD_IPS: wrong.join(",") },
    args: ["--service-name=ring"],
  });
  try {
    const warn = await contradicted.waitLog((l) =>
      l.msg === "pod identity contradicts an endpoint"
    );
    assert.equal(warn.level, "warn");
    assert.equal(warn.service, `${ns}/ring`);
    // More changes of this Pod: no second line.
    await setPodReady(ns, "ring-0", true);
    await waitFor(async () => (await get(contradicted, base)).body.self === "ready");
    await setPodReady(ns, "ring-0", false);
    await waitFor(async () => (await get(contradicted, base)).body.self === "not-ready");
    const peers = (await get(contradicted, `${base}?exclude=self&state=all`)).body;
    assert.deepEqual(addresses(peers), [...ips(1), ...ips(2)].sort());
    const warns = contradicted.logs.filter((l) => l.msg === CONTRADICTION);
    assert.equal(warns.length, 1, JSON.stringify(warns));
  } finally {
    await contradicted.stop();
  }
}

Deno.test(
  "a sidecar with its Pod's identity sees itself marked, leaves itself out with exclude=self, and is woken by its own flip only when it asks to see itself",
  T,
  () => scenario(false),
);

Deno.test(
  "the same on a dual-stack Service: both of the Pod's endpoints are it",
  T,
  () => scenario(true),
);
