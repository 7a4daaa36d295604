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

/** The handshake under way per server address: one at a time, since Deno keeps a socket whose
 * handshake never ends open until the peer answers or TCP gives up (closing it does not), so a
 * server that accepts and never answers would otherwise hold one more at each reset. */
const pending = new Map<string, Promise<boolean>>();

/** Whether `server` (an https:// URL, reached directly) picks HTTP/2: false for http:// or
 * another pick, undefined when the handshake fails or times out (cannot tell). `caPem`: the CA
 * that signed its certificate. A call while an earlier handshake to the same address is still
 * under way waits for that one. */
export async function picksHttp2(
  server: string,
  caPem?: string,
  timeoutMs = HANDSHAKE_TIMEOUT_MS,
): Promise<boolean | undefined> {
  const url = new URL(server);
  if (url.protocol !== "https:") return false;
  const key = `${url.host}\n${caPem ?? ""}`;
  let handshake = pending.get(key);
  if (!handshake) {
    const started: Promise<boolean> = Deno.connectTls({
      hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: Number(url.port || 443),
      caCerts: caPem ? [caPem] : undefined,
      alpnProtocols: ["h2", "http/1.1"],
    }).then(async (conn) => {
      try {
        return (await conn.handshake()).alpnProtocol === "h2";
      } finally {
        conn.close();
      }
    }).finally(() => {
      if (pending.get(key) === started) pending.delete(key);
    });
    started.catch(() => {});
    pending.set(key, handshake = started);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeoutMs);
  });
  try {
    return await Promise.race([handshake, late]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
