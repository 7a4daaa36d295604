/** docs/api.md's "Forming a cluster" shell calls, run as written (bash and curl) against the
 * sidecar's handler over a cache driven by hand: the wait for "I am listed" started before the
 * sidecar listens (containers of a Pod start together) ends once this Pod is ready without
 * spinning, and the peers loop prints the peers once per change of a peer only. */
import assert from "node:assert/strict";
import { EndpointCache } from "../../lib/cache.ts";
import { createHandler } from "../../lib/routes/table.ts";
import { podSlice } from "../support/slices.ts";

type Pod = { name: string; ip: string; ready: boolean };

/** Service shop/ring's one slice, as the tests below list it (port gossip 7946). */
const RING = { service: "ring", name: "ring-a", namespace: "shop", port: 7946, portName: "gossip" };

/** The doc's shell block: the lines before step 1 (settings and helpers) and each step. */
async function docSteps(): Promise<{ preamble: string; steps: string[] }> {
  const doc = await Deno.readTextFile(new URL("../../docs/api.md", import.meta.url));
  const block = doc.split("## Forming a cluster")[1]!.split("```sh\n")[1]!.split("```")[0]!;
  const [preamble, ...steps] = block.split(/^(?=# \d\. )/m);
  assert.equal(steps.length, 3, "three steps, each starting with a comment '# N. '");
  return { preamble: preamble!, steps };
}

/** A sidecar handler for Service shop/ring as Pod ring-0, served on `port` from `at` ms on. */
function sidecar(port: number, at: number) {
  const cache = new EndpointCache(new Map([["shop", { kind: "names", names: ["ring"] } as const]]));
  const handler = createHandler(cache, { pod: { name: "ring-0", namespace: "shop", ips: [] } });
  const seen = { requests: 0, bad: 0 };
  let server: Deno.HttpServer | undefined;
  const timer = setTimeout(() => {
    server = Deno.serve({ port, hostname: "127.0.0.1", onListen() {} }, async (req, info) => {
      seen.requests++;
      const r = await handler(req, info);
      if (r.status >= 400) seen.bad++;
      return r;
    });
  }, at);
  return {
    store: cache.sliceStore("shop"),
    seen,
    stop: async () => {
      clearTimeout(timer);
      await server?.shutdown();
    },
  };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function bash(script: string, port: number, seconds: number) {
  const child = new Deno.Command("timeout", {
    args: [String(seconds), "bash", "-c", script.replaceAll("localhost:8080", `127.0.0.1:${port}`)],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  return child;
}

Deno.test("the doc's wait until I am listed, started before the sidecar listens, ends when this Pod is ready without spinning", async () => {
  const port = freePort();
  const s = sidecar(port, 1000);
  const ring = [{ name: "ring-0", ip: "10.0.0.1", ready: false }];
  setTimeout(() => s.store.replace([podSlice(ring, { ...RING, rv: "10" })], "10"), 1500);
  const ready = setTimeout(
    () =>
      s.store.apply("MODIFIED", podSlice([{ ...ring[0]!, ready: true }], { ...RING, rv: "11" })),
    3000,
  );
  const t0 = Date.now();
  const { preamble, steps } = await docSteps();
  const out = await bash(preamble + steps[0], port, 10).output();
  const ms = Date.now() - t0;
  clearTimeout(ready);
  await s.stop();
  assert.equal(out.code, 0, `the wait did not end (${JSON.stringify(s.seen)})`);
  assert.ok(ms >= 2900, `it ended before this Pod was ready (${ms} ms)`);
  assert.equal(s.seen.bad, 0, `requests that failed: ${JSON.stringify(s.seen)}`);
  assert.ok(s.seen.requests <= 4, `one blocking query per change: ${JSON.stringify(s.seen)}`);
});

Deno.test("the doc's peers loop prints the peers without this Pod, again on a peer's change and not on this Pod's", async () => {
  const port = freePort();
  const s = sidecar(port, 0);
  const pods = (me: boolean, peer: boolean) => [
    { name: "ring-0", ip: "10.0.0.1", ready: me },
    { name: "ring-1", ip: "10.0.0.2", ready: true },
    { name: "ring-2", ip: "10.0.0.3", ready: peer },
  ];
  s.store.replace([podSlice(pods(true, true), { ...RING, rv: "10" })], "10");
  const { preamble, steps } = await docSteps();
  const child = bash(preamble + steps[2], port, 4);
  setTimeout(
    () => s.store.apply("MODIFIED", podSlice(pods(false, true), { ...RING, rv: "11" })),
    800,
  );
  setTimeout(
    () => s.store.apply("MODIFIED", podSlice(pods(false, false), { ...RING, rv: "12" })),
    1600,
  );
  const out = new TextDecoder().decode((await child.output()).stdout);
  await s.stop();
  assert.equal(out, "10.0.0.2:7946\n10.0.0.3:7946\n" + "10.0.0.2:7946\n");
  assert.equal(s.seen.bad, 0);
  assert.ok(s.seen.requests <= 4, JSON.stringify(s.seen));
});
