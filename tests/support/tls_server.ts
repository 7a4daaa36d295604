/**
 * An HTTPS server on 127.0.0.1 with the tests' server certificate (tests/unit/testdata/
 * tls-server.crt, signed by tls-ca.crt), for the unit tests of how the client trusts and talks
 * to an API server over TLS (kubeconfig, trust and CA rotation tests).
 *
 * @module
 */

/** The answer of `GET /version` that the client's first request expects. */
const VERSION = { major: "1", minor: "37" };

/** Serves `handler` (by default the version answer) over TLS on a random loopback port. */
export function tlsServer(
  handler: Deno.ServeHandler<Deno.NetAddr> = () => Response.json(VERSION),
): Deno.HttpServer<Deno.NetAddr> {
  const testdata = (f: string) => new URL(`../unit/testdata/${f}`, import.meta.url);
  return Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    cert: Deno.readTextFileSync(testdata("tls-server.crt")),
    key: Deno.readTextFileSync(testdata("tls-server.key")),
  }, handler);
}
