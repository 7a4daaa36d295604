/**
 * A child process for tests/unit/churn_test.ts: serves the /v1 API over a cache driven by hand
 * (Deno.serve on port 0, the drain signal of the sidecar), opens and closes SSE streams and
 * blocking queries through real connections, and prints the JS heap (after a full GC, so run it
 * with `--v8-flags=--expose-gc`) before and after as one JSON line. A child, because only a
 * process started with that flag can collect garbage on demand, and the test must read what is
 * kept, not what is merely not collected yet.
 *
 * Arguments: the number of SSE streams and of blocking queries, and `waiting` to open the streams
 * on a second namespace that never syncs (they read only the opening comment, then leave).
 *
 * @module
 */
import type { V1EndpointSlice } from "@kubernetes/client-node";
import { createApi } from "../../lib/routes/v1.ts";
import { EndpointCache } from "../../lib/cache.ts";
import type { WatchedServices } from "../../lib/selection.ts";
import { HealthRegistry } from "../../lib/health.ts";
import { OpenWatchers } from "../../lib/open_watchers.ts";

const [sseCount, blockingCount] = [Number(Deno.args[0] ?? 1000), Number(Deno.args[1] ?? 1000)];
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");

const waiting = Deno.args.includes("waiting");
const plan = new Map<string, WatchedServices>([
  ["ns", { kind: "names", names: ["web"] }],
  ["other", { kind: "names", names: ["db"] }],
]);
const cache = new EndpointCache(plan);
const slice: V1EndpointSlice = {
  metadata: {
    name: "web-1",
    resourceVersion: "5",
    labels: { "kubernetes.io/service-name": "web" },
  },
  addressType: "IPv4",
  endpoints: [{ addresses: ["10.0.0.1"], conditions: { ready: true } }],
  ports: [{ name: "http", port: 8080, protocol: "TCP" }],
};
cache.sliceStore("ns").replace([slice], "5");
if (!waiting) cache.sliceStore("other").replace([], "5");
const drain = new AbortController();
const watchers = new OpenWatchers(100_000);
const api = createApi(cache, {
  self: {},
  watchers,
  health: new HealthRegistry(),
  signal: drain.signal,
});
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  (req) => {
    const url = new URL(req.url);
    return api(req, url.pathname, url.search.slice(1)) ?? new Response("no", { status: 404 });
  },
);
const base = `http://127.0.0.1:${server.addr.port}`;
const client = Deno.createHttpClient({});

/** Opens a stream, reads its first event, and drops it. */
async function sseOnce(): Promise<void> {
  const ac = new AbortController();
  const path = waiting ? "/v1/watch/other/db" : "/v1/watch/ns/web";
  const resp = await fetch(`${base}${path}`, { signal: ac.signal, client });
  const reader = resp.body!.getReader();
  let text = "";
  const decoder = new TextDecoder();
  while (!text.includes(waiting ? ": waiting" : "event: snapshot")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended early: ${text}`);
    text += decoder.decode(value);
  }
  ac.abort();
  await reader.cancel().catch(() => {});
}

/** A blocking query that the client gives up on before it answers. */
async function blockingOnce(): Promise<void> {
  const ac = new AbortController();
  const pending = fetch(`${base}/v1/services/ns/web?index=5&wait=60s`, {
    signal: ac.signal,
    client,
  })
    .then((r) => r.body?.cancel()).catch(() => {});
  // Let the query reach its wait before the client leaves.
  while (watchers.blocking === 0) await new Promise((r) => setTimeout(r, 0));
  ac.abort();
  await pending;
}

async function settle(): Promise<number> {
  // Let closed connections and their abort signals finish, then collect.
  const deadline = Date.now() + 10_000;
  while ((watchers.sse || watchers.blocking) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 200));
  for (let i = 0; i < 3; i++) gc!();
  return Deno.memoryUsage().heapUsed;
}

// Warm up: the first few of each allocate code and caches once.
for (let i = 0; i < 50; i++) await sseOnce();
for (let i = 0; i < 50; i++) await blockingOnce();
const before = await settle();
for (let i = 0; i < sseCount; i++) await sseOnce();
for (let i = 0; i < blockingCount; i++) await blockingOnce();
const after = await settle();
console.log(JSON.stringify({ before, after, open: watchers }));
drain.abort();
client.close();
await server.shutdown();
