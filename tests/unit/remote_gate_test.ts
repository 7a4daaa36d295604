import assert from "node:assert/strict";
import type { Logger } from "../../lib/log.ts";
import { type ConnectionLimits, RemoteGate } from "../../lib/remote_gate.ts";
import { LIVE_TEST } from "../support/options.ts";

const quiet: Logger = { log: () => {} } as unknown as Logger;

/** A gate on 127.0.0.1 that counts every client as remote, in front of a server that answers
 * with the client address it was told. */
function setup(limits: Partial<ConnectionLimits>, isLocal = (_: string) => false) {
  const gate = new RemoteGate({
    limits: {
      headerTimeoutMs: 60_000,
      idleTimeoutMs: 60_000,
      maxConnections: 100,
      maxPerClient: 100,
      ...limits,
    },
    isLocal,
    log: quiet,
  });
  const inner = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (_req, info) => new Response(gate.peerOf(info.remoteAddr as Deno.NetAddr)?.hostname ?? "?"),
  );
  gate.setInner(inner.addr as Deno.NetAddr);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  void gate.serve(listener);
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    gate,
    port,
    connect: () => Deno.connect({ hostname: "127.0.0.1", port }),
    async close() {
      gate.close();
      await inner.shutdown();
    },
  };
}

const REQUEST = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n");

/** Whether the peer closes a connection that is sent nothing within `ms`: "closed" or "open".
 * Only for a connection read nowhere else (a pending read stays pending). */
async function closedWithin(conn: Deno.Conn, ms: number): Promise<"closed" | "open"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const result = await Promise.race([
    conn.read(new Uint8Array(4096)).then((n) => n === null ? "closed" : "open", () => "closed"),
    new Promise<"open">((r) => timer = setTimeout(() => r("open"), ms)),
  ]);
  clearTimeout(timer);
  return result as "closed" | "open";
}

async function answer(conn: Deno.Conn): Promise<string> {
  await conn.write(REQUEST);
  const buf = new Uint8Array(4096);
  const n = await conn.read(buf);
  return new TextDecoder().decode(buf.subarray(0, n ?? 0));
}

Deno.test(
  "an admitted connection is piped to the inner server, which learns the real client",
  LIVE_TEST,
  async () => {
    const g = setup({});
    try {
      const c = await g.connect();
      const text = await answer(c);
      assert.match(text, /^HTTP\/1.1 200/);
      assert.match(text, /127\.0\.0\.1$/);
      assert.match(await answer(c), /127\.0\.0\.1$/, "keep-alive: a second request on it");
      c.close();
    } finally {
      await g.close();
    }
  },
);

Deno.test(
  "past the per-client cap and the total cap a new connection is closed at once",
  LIVE_TEST,
  async () => {
    const g = setup({ maxPerClient: 3, maxConnections: 5 });
    try {
      const held = await Promise.all([1, 2, 3].map(() => g.connect()));
      await new Promise((r) => setTimeout(r, 100));
      const fourth = await g.connect();
      assert.equal(await closedWithin(fourth, 1000), "closed");
      assert.equal(g.gate.stats.open, 3);
      assert.equal(g.gate.stats.refused, 1);
      held[0]!.close();
      await new Promise((r) => setTimeout(r, 100));
      const again = await g.connect();
      assert.match(await answer(again), /200/, "a freed slot is usable again");
      for (const c of [...held.slice(1), fourth, again]) c.close();
    } finally {
      await g.close();
    }
  },
);

Deno.test(
  "a connection that does not finish its headers within the limit is closed; the Pod's own are not",
  LIVE_TEST,
  async () => {
    const g = setup({ headerTimeoutMs: 1_000 });
    try {
      const silent = await g.connect();
      const partial = await g.connect();
      await partial.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n"));
      const started = Date.now();
      assert.equal(await closedWithin(silent, 4_000), "closed");
      assert.equal(await closedWithin(partial, 4_000), "closed");
      assert.ok(Date.now() - started < 3_500, `${Date.now() - started} ms`);
      assert.equal(g.gate.stats.headerTimeouts, 2);
      assert.equal(g.gate.stats.open, 0);
    } finally {
      await g.close();
    }
    const local = setup({ headerTimeoutMs: 1_000 }, () => true);
    try {
      const c = await local.connect();
      await new Promise((r) => setTimeout(r, 2_500));
      assert.match(await answer(c), /200/, "still open after the header limit");
      c.close();
    } finally {
      await local.close();
    }
  },
);

Deno.test(
  "an idle keep-alive connection is closed after the idle limit; a slow second request after the header limit",
  LIVE_TEST,
  async () => {
    const g = setup({ idleTimeoutMs: 1_000, headerTimeoutMs: 1_500 });
    try {
      const idle = await g.connect();
      assert.match(await answer(idle), /200/);
      assert.equal(await closedWithin(idle, 4_000), "closed");
      assert.equal(g.gate.stats.idleTimeouts, 1);
      const slow = await g.connect();
      assert.match(await answer(slow), /200/);
      // One byte every 500 ms keeps it from idling but never ends the head.
      let closed = false;
      const started = Date.now();
      for (let i = 0; i < 10 && !closed; i++) {
        closed = await slow.write(new Uint8Array([65])).then(() => false, () => true);
        if (!closed) closed = (await closedWithin(slow, 500)) === "closed";
      }
      assert.ok(closed, "the slow head was cut");
      assert.ok(Date.now() - started < 4_000, `${Date.now() - started} ms`);
      assert.equal(g.gate.stats.headerTimeouts, 1);
    } finally {
      await g.close();
    }
  },
);

Deno.test(
  "a client that closes its sending side after the request still gets the answer",
  LIVE_TEST,
  async () => {
    const g = setup({});
    try {
      const c = await g.connect();
      await c.write(
        new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
      );
      await c.closeWrite();
      const buf = new Uint8Array(4096);
      const n = await c.read(buf);
      assert.match(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^HTTP\/1.1 200/);
      c.close();
    } finally {
      await g.close();
    }
  },
);

Deno.test(
  "the inner server learns a client from the pipe's address and port, not its port alone",
  LIVE_TEST,
  async () => {
    const gate = new RemoteGate({
      limits: {
        headerTimeoutMs: 60_000,
        idleTimeoutMs: 60_000,
        maxConnections: 9,
        maxPerClient: 9,
      },
      isLocal: () => false,
      log: quiet,
    });
    const seen: Deno.NetAddr[] = [];
    const inner = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (_r, info) => {
      seen.push(info.remoteAddr as Deno.NetAddr);
      return new Response("x");
    });
    gate.setInner(inner.addr as Deno.NetAddr);
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    void gate.serve(listener);
    try {
      const c = await Deno.connect({
        hostname: "127.0.0.1",
        port: (listener.addr as Deno.NetAddr).port,
      });
      assert.match(await answer(c), /200/);
      const pipe = seen[0]!;
      assert.equal(gate.peerOf(pipe)?.hostname, "127.0.0.1");
      // Another loopback address with the same port (a process in the Pod connecting to the
      // inner server itself) is not the gate's pipe.
      assert.equal(gate.peerOf({ ...pipe, hostname: "127.0.0.2" }), undefined);
      c.close();
    } finally {
      gate.close();
      await inner.shutdown();
    }
  },
);

/** A connection from a given loopback source address (node:net can bind one; Deno.connect
 * cannot); `closed` resolves when the gate closes it. */
async function connectFrom(localAddress: string, port: number) {
  const { connect } = await import("node:net");
  const socket = connect({ host: "127.0.0.1", port, localAddress });
  const closed = new Promise<void>((r) => socket.on("close", () => r()));
  socket.on("error", () => {});
  await new Promise<void>((r, j) => socket.once("connect", () => r()).once("error", j));
  return { socket, closed };
}

Deno.test(
  "a full total cap is shared to within one: two clients one apart never close each other's connections, an address holding none gets in",
  LIVE_TEST,
  async () => {
    const g = setup({ maxConnections: 3, maxPerClient: 3 });
    const open: Awaited<ReturnType<typeof connectFrom>>[] = [];
    const settle = () => new Promise((r) => setTimeout(r, 150));
    try {
      for (const from of ["127.0.0.2", "127.0.0.2", "127.0.0.3"]) {
        open.push(await connectFrom(from, g.port));
      }
      await settle();
      assert.equal(g.gate.stats.open, 3);
      // 127.0.0.3 holds 1 and asks for a 2nd while 127.0.0.2 holds 2: a shed would only swap
      // the counts (and the next reconnect of .2 would swap them back), so it is refused.
      for (let i = 0; i < 4; i++) {
        const again = await connectFrom("127.0.0.3", g.port);
        await settle();
        open.push(again);
      }
      assert.equal(g.gate.stats.shed, 0, "no connection closed to make room for a near-equal");
      assert.equal(g.gate.stats.refused, 4);
      // An address holding none (the kubelet) always gets in: the heaviest gives one up.
      const kubelet = await connectFrom("127.0.0.4", g.port);
      open.push(kubelet);
      await Promise.race([open[0]!.closed, open[1]!.closed]);
      await settle();
      assert.equal(g.gate.stats.shed, 1);
      assert.equal(g.gate.stats.open, 3);
    } finally {
      for (const c of open) c.socket.destroy();
      await g.close();
    }
  },
);
