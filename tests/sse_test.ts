/** SSE streams that real EventSource clients keep, against the real control plane (issue 12). */
import assert from "node:assert/strict";
import { EventSource } from "eventsource";
import {
  createNamespace,
  createPods,
  createService,
  forceDeletePod,
  listEndpointSlices,
  podIPv4,
} from "./support/cluster/fixtures.ts";
import { grantRole } from "./support/cluster/rbac.ts";
import { waitFor } from "./support/cluster/wait.ts";
import { DISCOVERY_RULES, podMount, spawnSidecar } from "./support/sidecar.ts";
import { type SseMessage, SseState, strictReader } from "./support/sse_client.ts";
import { LIVE_TEST as T } from "./support/options.ts";

const EVENT_TYPES = ["snapshot", "update", "removed", "reset"];

/** A port nothing listens on now, so a restarted sidecar can take the same one. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A client under test: it reconnects on its own; the test only watches. */
interface Client {
  state: SseState;
  /** Why it gave up for good, if it did. */
  fatal(): string | undefined;
  /** How its streams ended, when the client tells (our reader does; the library does not). */
  endings?: string[];
  close(): void;
}

function npmEventSource(url: string): Client {
  const state = new SseState();
  let fatal: string | undefined;
  const es = new EventSource(url);
  for (const type of EVENT_TYPES) {
    es.addEventListener(type, (e) => {
      const m = e as MessageEvent;
      state.apply({ event: type, id: m.lastEventId, data: m.data });
    });
  }
  es.addEventListener("error", (e) => {
    // The library reports a fatal status with readyState CLOSED: it will never reconnect.
    if (es.readyState === EventSource.CLOSED) {
      fatal = `closed for good: ${(e as unknown as { message?: string }).message ?? ""}`;
    }
  });
  return { state, fatal: () => fatal, close: () => es.close() };
}

function specReader(url: string): Client {
  const state = new SseState();
  const r = strictReader(url, { onMessage: (m: SseMessage) => state.apply(m) });
  return { state, fatal: () => r.fatal, close: () => r.close(), endings: r.endings };
}

/** The sorted IPv4 addresses of the Service's ready endpoints, as the API server has them. */
async function trueAddresses(ns: string, name: string): Promise<string[]> {
  const slices = await listEndpointSlices(ns, name);
  return slices.flatMap((s) => s.endpoints ?? [])
    .filter((e) => e.conditions?.ready !== false)
    .map((e) => e.addresses[0]!).sort();
}

/** Waits until the client's state satisfies `cond`. */
async function until(cond: () => boolean, what: string | (() => string)): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!cond()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function restartScenario(makeClient: (url: string) => Client): Promise<void> {
  const ns = await createNamespace("sse");
  await createService(ns, "web");
  const pods = await createPods(ns, 2, { labels: { app: "web" }, nodeName: "sse-node" });
  await waitFor(async () => (await trueAddresses(ns, "web")).length === 2);
  // No Role yet: the sidecar listens but cannot list, so it is not ready.
  const mount = await podMount(ns, { rules: [] });
  const port = freePort();
  const env = { ...mount.env, KUBERNETES_POD_DISCOVERY_LISTEN_PORT: String(port) };
  const args = ["--service-name=web"];
  let sidecar = await spawnSidecar({ env, args });
  const key = `${ns}/web`;
  const client = makeClient(`http://127.0.0.1:${port}/v1/watch/${ns}/web`);
  const alive = () => assert.equal(client.fatal(), undefined, "the client gave up");
  // A client that gave up fails the wait at once, with its reason, instead of timing out.
  const waitAlive = (cond: () => boolean, what: string | (() => string)) =>
    until(() => {
      alive();
      return cond();
    }, what);
  try {
    // Before the first list: the stream is open, nothing is claimed.
    await new Promise((r) => setTimeout(r, 1500));
    alive();
    assert.equal((await sidecar.request("/readyz")).status, 503);
    assert.equal(client.state.services.size, 0, "no state before the first complete list");

    await grantRole(ns, { kind: "ServiceAccount", name: mount.serviceAccount }, DISCOVERY_RULES);
    await waitAlive(() => client.state.addresses(key)?.length === 2, "the snapshot once synced");
    alive();
    assert.deepEqual(client.state.addresses(key), [podIPv4(0), podIPv4(1)]);
    assert.equal(client.state.log.find((m) => m.event === "snapshot")?.event, "snapshot");

    await createPods(ns, 1, { labels: { app: "web" }, nodeName: "sse-node", start: 2 });
    await waitAlive(() => client.state.addresses(key)?.length === 3, "the update");
    alive();

    // Stop; change the Service while no sidecar runs; start the next one on the same port.
    assert.equal(await sidecar.stop(), 0);
    alive();
    if (client.endings) assert.deepEqual(client.endings, ["clean"], "shutdown ends the stream");
    await forceDeletePod(ns, pods[0]!);
    await createPods(ns, 1, { labels: { app: "web" }, nodeName: "sse-node", start: 3 });
    const want = [podIPv4(1), podIPv4(2), podIPv4(3)];
    await waitFor(async () =>
      JSON.stringify(await trueAddresses(ns, "web")) === JSON.stringify(want)
    );
    alive();
    assert.deepEqual(client.state.addresses(key), [podIPv4(0), podIPv4(1), podIPv4(2)]);
    sidecar = await spawnSidecar({ env, args });
    await waitAlive(
      () => JSON.stringify(client.state.addresses(key)) === JSON.stringify(want),
      () => `the true state after the restart; events: ${JSON.stringify(client.state.log)}`,
    );
    alive();
    const after = client.state.log.slice(client.state.log.findIndex((m) => m.event === "update"));
    assert.ok(
      after.some((m) => m.event === "reset"),
      "the old Last-Event-ID was answered with a reset and a snapshot",
    );
    assert.equal(after.at(-1)!.event, "snapshot");
  } finally {
    client.close();
    await sidecar.stop();
    await mount.remove();
  }
}

Deno.test(
  "npm eventsource connected before readiness stays connected across a sidecar restart and ends at the true state",
  T,
  () => restartScenario(npmEventSource),
);

Deno.test(
  "a reader that treats any non-200 as fatal stays connected across readiness and a restart",
  T,
  () => restartScenario(specReader),
);
