/**
 * lib/alpn.ts: whether an API server's connection would be HTTP/2, told by the protocol it picks
 * for our offer (h2 and http/1.1, as Deno's fetch offers), on local TLS servers of each kind.
 *
 * @module
 */
import assert from "node:assert/strict";
import { picksHttp2 } from "../../lib/alpn.ts";

const read = (name: string) => Deno.readTextFileSync(new URL(`testdata/${name}`, import.meta.url));
const tls = { cert: read("tls-server.crt"), key: read("tls-server.key") };
const ca = read("tls-ca.crt");

/** A TLS listener that picks from `alpn` and closes each connection after the handshake. */
function tlsServer(alpn?: string[]) {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...tls, alpnProtocols: alpn });
  const served = (async () => {
    for await (const conn of listener) {
      await conn.handshake().catch(() => {});
      conn.close();
    }
  })().catch(() => {});
  return {
    url: `https://127.0.0.1:${listener.addr.port}`,
    close: async () => {
      listener.close();
      await served;
    },
  };
}

Deno.test("a server that picks h2 (as the kube-apiserver does) is told as HTTP/2", async () => {
  const s = tlsServer(["h2", "http/1.1"]);
  try {
    assert.equal(await picksHttp2(s.url, ca), true);
  } finally {
    await s.close();
  }
});

Deno.test("a server that speaks only HTTP/1.1, or offers no ALPN at all, is not", async () => {
  for (const alpn of [["http/1.1"], undefined]) {
    const s = tlsServer(alpn);
    try {
      assert.equal(await picksHttp2(s.url, ca), false, `ALPN ${alpn}`);
    } finally {
      await s.close();
    }
  }
});

Deno.test("http:// is not HTTP/2; an untrusted certificate or nothing listening cannot tell", async () => {
  assert.equal(await picksHttp2("http://127.0.0.1:1"), false);
  const s = tlsServer(["h2"]);
  try {
    assert.equal(await picksHttp2(s.url), undefined, "the server's CA not given");
  } finally {
    await s.close();
  }
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  assert.equal(await picksHttp2(`https://127.0.0.1:${port}`, ca), undefined);
});

Deno.test(
  "a server that accepts and never answers the handshake holds one socket, not one per ask",
  {
    // The handshake left under way is Deno's to end (when the peer answers or closes).
    sanitizeOps: false,
    sanitizeResources: false,
  },
  async () => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const c of l) accepted.push(c);
    })().catch(() => {});
    try {
      for (let i = 0; i < 3; i++) {
        assert.equal(await picksHttp2(`https://127.0.0.1:${l.addr.port}`, ca, 100), undefined);
      }
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(accepted.length, 1, "one connection for three asks");
    } finally {
      l.close();
      for (const c of accepted) c.close();
      await accepting;
    }
  },
);
