/** The drain at shutdown learns that the last stream or blocking query ended from the count's
 * own promise, not by polling it. */
import assert from "node:assert/strict";
import { createApi } from "../../lib/routes/v1.ts";
import { EndpointCache } from "../../lib/cache.ts";
import { HealthRegistry } from "../../lib/health.ts";
import { OpenWatchers } from "../../lib/open_watchers.ts";
import { sliceFor as slice } from "../support/slices.ts";

Deno.test("idle() resolves as the last stream or blocking query ends, not before", async () => {
  const cache = new EndpointCache(new Map([["ns", { kind: "names", names: ["web"] }]]));
  cache.sliceStore("ns").replace([slice("web", ["10.0.0.1"], "5")], "10");
  const watchers = new OpenWatchers();
  const drain = new AbortController();
  const api = createApi(cache, {
    self: {},
    maxWatchers: 10,
    watchers,
    health: new HealthRegistry(),
    signal: drain.signal,
  });
  await watchers.idle();
  const client = new AbortController();
  const held = api(
    new Request("http://x/v1/services/ns/web?index=10&wait=60s", { signal: client.signal }),
    "/v1/services/ns/web",
    "index=10&wait=60s",
  );
  const stream = await api(new Request("http://x/v1/watch/ns/web"), "/v1/watch/ns/web")!;
  assert.deepEqual([watchers.sse, watchers.blocking], [1, 1]);
  let idle = false;
  const done = watchers.idle().then(() => idle = true);
  client.abort();
  await held;
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(idle, false, "a stream is still open");
  await stream.body!.cancel();
  await done;
  assert.deepEqual([watchers.sse, watchers.blocking], [0, 0]);
});
