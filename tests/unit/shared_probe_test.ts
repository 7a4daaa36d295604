/**
 * Two reflectors on one shared HTTP/2 connection (lib/shared_connection.ts), driven on a fake
 * clock: the idle probe is sent per connection, not per watch. A scripted API server answers
 * lists at once, keeps one watch quiet and feeds the other bookmarks when the test says, and
 * counts the probes (GET /version); a black hole stops every answer.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { KubeConnection } from "../../lib/kube_connection.ts";
import type { Logger } from "../../lib/log.ts";
import { Reflector } from "../../lib/reflector.ts";
import { shareConnection } from "../../lib/shared_connection.ts";
import type { ReflectorStore } from "../../lib/store.ts";

/** setTimeout, clearTimeout and performance.now on a clock the test moves. */
class FakeClock {
  now = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #nextId = 1;
  #saved = {
    setTimeout: globalThis.setTimeout,
    clearTimeout: globalThis.clearTimeout,
    now: performance.now,
  };

  install(): void {
    // deno-lint-ignore no-explicit-any -- the fake stands in for the global overloads
    (globalThis as any).setTimeout = (fn: () => void, ms = 0) => {
      const id = this.#nextId++;
      this.#timers.set(id, { at: this.now + Math.max(0, ms), fn });
      return id;
    };
    // deno-lint-ignore no-explicit-any -- as above
    (globalThis as any).clearTimeout = (id?: number) => void this.#timers.delete(id ?? 0);
    performance.now = () => this.now;
  }

  restore(): void {
    globalThis.setTimeout = this.#saved.setTimeout;
    globalThis.clearTimeout = this.#saved.clearTimeout;
    performance.now = this.#saved.now;
  }

  /** Lets promises and stream reads settle (real macrotasks). */
  async settle(): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise((r) => this.#saved.setTimeout(r, 0));
  }

  /** Moves the clock `ms` ahead, firing each timer due on the way at its time. */
  async tick(ms: number): Promise<void> {
    const end = this.now + ms;
    while (true) {
      await this.settle();
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const t of this.#timers) if (t[1].at <= end && (!next || t[1].at < next[1].at)) next = t;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
    }
    this.now = end;
    await this.settle();
  }
}

const encode = (o: unknown) => new TextEncoder().encode(JSON.stringify(o) + "\n");
const bookmark = (rv: number) => ({
  type: "BOOKMARK",
  object: { metadata: { resourceVersion: `${rv}` } },
});

/** A request that never gets an answer until aborted. */
const silence = (signal?: AbortSignal | null): Promise<Response> =>
  new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));

/** The scripted API server behind one multiplexed connection. */
function scriptedServer(multiplexed = true) {
  const state = { probes: 0, resets: 0, blackHole: false };
  /** Sends a bookmark on every open watch of namespace "a". */
  const feeds = new Set<ReadableStreamDefaultController<Uint8Array>>();
  let rv = 100;
  const conn: KubeConnection = {
    server: "https://api",
    mode: "in-cluster",
    fetch(path, init) {
      const url = new URL(path, "https://api");
      const signal = init?.signal;
      if (url.pathname === "/version") {
        state.probes++;
        if (state.blackHole) return silence(signal);
        return Promise.resolve(new Response('{"major":"1"}'));
      }
      if (state.blackHole) return silence(signal);
      if (url.searchParams.get("watch") !== "1") {
        const list = { metadata: { resourceVersion: "10" }, items: [] };
        return Promise.resolve(new Response(JSON.stringify(list)));
      }
      const fed = url.pathname.includes("/namespaces/a/");
      let controller: ReadableStreamDefaultController<Uint8Array>;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          controller = c;
          if (fed) feeds.add(c);
          signal?.addEventListener("abort", () => {
            feeds.delete(c);
            try {
              c.error(signal.reason);
            } catch { /* already closed */ }
          });
        },
        cancel() {
          feeds.delete(controller);
        },
      });
      return Promise.resolve(new Response(body));
    },
    unauthorized() {},
    reset() {
      state.resets++;
    },
    close() {},
    // In a black hole the handshake that tells it gets no answer either: cannot tell.
    multiplexed: () => Promise.resolve(state.blackHole ? undefined : multiplexed),
  };
  const bookmarkA = () => {
    rv++;
    for (const c of feeds) c.enqueue(encode(bookmark(rv)));
  };
  return { conn, state, bookmarkA };
}

/** Every log line's message and reason, by namespace. */
const logs: Record<string, string[]> = {};

function reflector(namespace: string, connection: ReturnType<typeof shareConnection>) {
  const store: ReflectorStore & { synced: boolean } = {
    synced: false,
    replace() {
      this.synced = true;
    },
    apply() {},
    touch() {},
  };
  const lines: string[] = logs[namespace] = [];
  const log: Logger = {
    enabled: () => true,
    log: (_level, msg, fields) => lines.push(`${msg}: ${fields?.reason ?? ""}`),
  };
  return new Reflector(store, {
    namespace,
    connection,
    log,
    streamingList: false,
    sleep: () => Promise.resolve(),
  });
}

Deno.test("watches on one HTTP/2 connection share its idle probe: none while any of them hears, one for all in a black hole, noticed by each within 45 s", async () => {
  const clock = new FakeClock();
  clock.install();
  const ac = new AbortController();
  let runs: Promise<void>[] = [];
  try {
    const server = scriptedServer();
    const shared = shareConnection(server.conn);
    await clock.settle();
    const a = reflector("a", shared);
    const b = reflector("b", shared);
    runs = [a.run(ac.signal), b.run(ac.signal)];
    await clock.tick(0);
    assert.ok(a.health.healthy && b.health.healthy, "both synced");

    // Five minutes: watch a hears a bookmark every 20 s, watch b nothing at all.
    for (let t = 0; t < 300_000; t += 20_000) {
      server.bookmarkA();
      await clock.tick(20_000);
      assert.ok(b.health.healthy, `the quiet watch stays healthy (at ${clock.now} ms)`);
    }
    assert.equal(server.state.probes, 0, "no probe while the connection carries bytes");

    // A black hole: nothing answers from the last byte on.
    server.bookmarkA();
    await clock.settle();
    server.state.blackHole = true;
    await clock.tick(45_000);
    assert.equal(server.state.probes, 1, "one probe for both watches");
    assert.equal(a.health.healthy, false, "watch a noticed within 45 s");
    assert.equal(b.health.healthy, false, "watch b noticed within 45 s");
    assert.equal(server.state.resets, 1, "the connection was reset once for all");
    for (const ns of ["a", "b"]) {
      assert.ok(
        logs[ns].some((l) => /^watch broken; resuming: connection dead/.test(l)),
        `watch ${ns} says its connection was dead: ${logs[ns].join("; ")}`,
      );
    }
  } finally {
    ac.abort();
    await clock.tick(1_000);
    clock.restore();
    await Promise.all(runs);
  }
});

Deno.test("where requests may not share one connection (HTTP/1.1, or cannot tell), a quiet watch probes its own though another one hears", async () => {
  const clock = new FakeClock();
  clock.install();
  const ac = new AbortController();
  let runs: Promise<void>[] = [];
  try {
    const server = scriptedServer(false);
    const shared = shareConnection(server.conn);
    await clock.settle();
    const a = reflector("a", shared);
    const b = reflector("b", shared);
    runs = [a.run(ac.signal), b.run(ac.signal)];
    await clock.tick(0);
    for (let t = 0; t < 60_000; t += 20_000) {
      server.bookmarkA();
      await clock.tick(20_000);
    }
    assert.ok(server.state.probes >= 1, "the quiet watch probed its own connection");
  } finally {
    ac.abort();
    await clock.tick(1_000);
    clock.restore();
    await Promise.all(runs);
  }
});

Deno.test("after a reset in a black hole, where HTTP/2 cannot be told, the watches still share one probe once the connection is back", async () => {
  const clock = new FakeClock();
  clock.install();
  const ac = new AbortController();
  let runs: Promise<void>[] = [];
  try {
    const server = scriptedServer();
    const shared = shareConnection(server.conn);
    await clock.settle();
    const a = reflector("a", shared);
    const b = reflector("b", shared);
    runs = [a.run(ac.signal), b.run(ac.signal)];
    await clock.tick(0);
    server.state.blackHole = true;
    await clock.tick(45_000);
    assert.equal(server.state.resets, 1, "the dead connection was reset");
    // Back: the watches sent into the black hole hang until their idle restart.
    server.state.blackHole = false;
    await clock.tick(100_000);
    server.bookmarkA();
    await clock.tick(0);
    assert.ok(a.health.healthy, "watch a hears again");
    const before = server.state.probes;
    for (let t = 0; t < 180_000; t += 20_000) {
      server.bookmarkA();
      await clock.tick(20_000);
    }
    assert.equal(server.state.probes, before, "no probe while watch a hears every 20 s");
  } finally {
    ac.abort();
    await clock.tick(1_000);
    clock.restore();
    await Promise.all(runs);
  }
});
