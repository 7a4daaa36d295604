/** Blocking queries waiting on a cache: each ends on its own Service's change, its deadline, its
 * client leaving or the drain, and leaves nothing behind. */
import assert from "node:assert/strict";
import type { ServiceView } from "../../lib/service_view.ts";
import { Waiters } from "../../lib/waiters.ts";

/** A cache that publishes what the test tells it to. */
function fakeCache() {
  let listener: (changed: ServiceView[]) => void = () => {};
  const cache = {
    subscribe: (l: (changed: ServiceView[]) => void) => {
      listener = l;
      return () => {};
    },
  };
  const publish = (namespace: string, name: string, removed = false) =>
    listener([{ namespace, name, removed } as ServiceView]);
  return { cache, publish };
}

const never = () => new AbortController().signal;

Deno.test("a waiting query ends on its own Service's change, not on another's", async () => {
  const { cache, publish } = fakeCache();
  const waiters = new Waiters(cache);
  let ended = false;
  const wait = waiters.wait("ns/web", 60_000, never()).then((gone) => {
    ended = true;
    return gone;
  });
  publish("ns", "other");
  await Promise.resolve();
  assert.equal(ended, false);
  assert.equal(waiters.size, 1);
  publish("ns", "web");
  assert.equal(await wait, undefined);
  assert.equal(waiters.size, 0);
});

Deno.test("a Service that goes away ends its waits with the tombstone", async () => {
  const { cache, publish } = fakeCache();
  const waiters = new Waiters(cache);
  const wait = waiters.wait("ns/web", 60_000, never());
  publish("ns", "web", true);
  assert.equal((await wait)?.removed, true);
});

Deno.test("the deadline, the client leaving and the drain each end a wait; a query during the drain answers at once", async () => {
  const { cache } = fakeCache();
  const drain = new AbortController();
  const waiters = new Waiters(cache, drain.signal);
  assert.equal(await waiters.wait("ns/web", 10, never()), undefined, "deadline");
  const client = new AbortController();
  const left = waiters.wait("ns/web", 60_000, client.signal);
  client.abort();
  assert.equal(await left, undefined, "client left");
  const drained = waiters.wait("ns/web", 60_000, never());
  drain.abort();
  assert.equal(await drained, undefined, "drain");
  assert.equal(await waiters.wait("ns/web", 60_000, never()), undefined, "during the drain");
  assert.equal(waiters.size, 0);
});
