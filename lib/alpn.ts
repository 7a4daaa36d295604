/**
 * Which protocol an HTTPS server picks for a client that offers HTTP/2 and HTTP/1.1, as Deno's
 * `fetch` does. Deno's `Response` does not say which protocol carried it; a TLS handshake of our
 * own to the same address, with the same offer, gets the same pick (ALPN). Over HTTP/2 Deno's
 * pool keeps one connection per host for every request; over HTTP/1.1 each open watch holds a
 * connection of its own.
 *
 * @module
 */

/** How long the handshake may take before the answer is "cannot tell" (undefined). */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Whether `server` (an https:// URL, reached directly) picks HTTP/2: false for http:// or
 * another pick, undefined when the handshake fails or times out (cannot tell). `caPem`: the CA
 * that signed its certificate. */
export async function picksHttp2(server: string, caPem?: string): Promise<boolean | undefined> {
  const url = new URL(server);
  if (url.protocol !== "https:") return false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connecting = Deno.connectTls({
    hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: Number(url.port || 443),
    caCerts: caPem ? [caPem] : undefined,
    alpnProtocols: ["h2", "http/1.1"],
  });
  const handshake = connecting.then(async (conn) => {
    try {
      return (await conn.handshake()).alpnProtocol === "h2";
    } finally {
      conn.close();
    }
  });
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), HANDSHAKE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([handshake, late]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    handshake.catch(() => {});
  }
}
