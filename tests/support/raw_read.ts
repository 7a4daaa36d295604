/**
 * Reading what a server sends on a raw TCP connection until it closes or a time runs out, for
 * the tests and the hostile client that speak HTTP/1.1 byte by byte (tests/http_edge_test.ts,
 * tests/support/hostile_client.ts).
 *
 * @module
 */

/** The text read from `conn` until the peer closes it, a read fails, or `ms` have passed. */
export async function readUntilClosed(conn: Deno.Conn, ms: number): Promise<string> {
  let out = "";
  const buf = new Uint8Array(65536);
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const n = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<null>((r) => setTimeout(() => r(null), deadline - Date.now())),
    ]);
    if (n === null) break;
    out += new TextDecoder().decode(buf.subarray(0, n));
  }
  return out;
}
