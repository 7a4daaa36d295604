/**
 * The sockets of one port (the main listener or the probe listener). On every interface (the
 * default) a port has three: `Deno.serve` on 127.0.0.1 and on ::1 for the Pod's own containers,
 * as fast as a bare `Deno.serve`, and the {@linkcode RemoteGate}'s accept loop on `::` (or
 * `0.0.0.0` where the kernel has no IPv6) for everyone else, all on the same port with
 * SO_REUSEPORT: Linux hands a connection to the socket bound to its destination address before
 * a wildcard one, so connections to 127.0.0.1 or ::1 never meet the gate's caps and all others
 * always do. SO_REUSEPORT is Deno's `--unstable-net` (set in deno.json and the image's flags).
 * A loopback address is served by `Deno.serve` alone, another address by the gate alone.
 *
 * @module
 */
import type { Logger } from "./log.ts";
import { type ConnectionLimits, RemoteGate } from "./remote_gate.ts";
import type { Handler } from "./routes/table.ts";

/** The running sockets of one port. */
export interface PortServer {
  /** The address as the `started` line names it (the wildcard when on every interface). */
  addr: Deno.NetAddr;
  /** The gate, when clients outside the Pod can connect. */
  gate?: RemoteGate;
  /** Stops accepting, finishes requests in flight, closes every connection. */
  shutdown(): Promise<void>;
  /** Resolves once every socket of the port is closed. */
  finished: Promise<void>;
}

/** Options for {@linkcode servePort}. */
export interface ServePortOptions {
  /** An IP address; undefined: every interface. */
  address?: string;
  port: number;
  handler: Handler;
  limits: ConnectionLimits;
  isLocal: (hostname: string) => boolean;
  log: Logger;
}

/** Whether an address is a loopback one (no client outside the Pod can reach it). */
export function isLoopbackAddress(address: string): boolean {
  return /^127\./.test(address) || address === "::1";
}

/** A client the inner server cannot place: treated as outside the Pod. */
const UNKNOWN: Deno.NetAddr = { transport: "tcp", hostname: "0.0.0.0", port: 0 };

/** Listens on one port as the module says. Throws as `Deno.listen` does. */
export function servePort(options: ServePortOptions): PortServer {
  const { address, handler, log } = options;
  const serve = (hostname: string, port: number, reusePort: boolean, h = handler) =>
    Deno.serve({
      hostname,
      port,
      reusePort,
      onListen: () => {},
      onError: (e) => {
        log.log("error", "request failed", { error: e });
        return new Response("internal error", { status: 500 });
      },
    } as Deno.ServeTcpOptions, h);
  if (address !== undefined && isLoopbackAddress(address)) {
    const s = serve(address, options.port, false);
    return { addr: s.addr, shutdown: () => s.shutdown(), finished: s.finished };
  }
  const wildcard = address === undefined || address === "::" || address === "0.0.0.0";
  const gate = new RemoteGate({
    inner: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
    limits: options.limits,
    isLocal: options.isLocal,
    log,
  });
  let listener: Deno.TcpListener;
  try {
    listener = listenGate(address ?? "::", options.port, wildcard);
  } catch (e) {
    if (address !== undefined || e instanceof Deno.errors.AddrInUse) throw e;
    listener = listenGate("0.0.0.0", options.port, true);
  }
  const addr = listener.addr as Deno.NetAddr;
  const servers: Deno.HttpServer[] = [];
  try {
    // The gate's own server, reached only through the gate: it learns the client from it.
    const inner = serve(
      "127.0.0.1",
      0,
      false,
      (req, info) =>
        handler(req, { remoteAddr: gate.peerOf(info!.remoteAddr as Deno.NetAddr) ?? UNKNOWN }),
    );
    servers.push(inner);
    gate.setInner(inner.addr as Deno.NetAddr);
    if (wildcard) {
      servers.push(serve("127.0.0.1", addr.port, true));
      if (addr.hostname === "::") {
        try {
          servers.push(serve("::1", addr.port, true));
        } catch (e) {
          // IPv6 disabled on the Pod's loopback (sysctl disable_ipv6): no client can come from
          // ::1 either, so nothing is lost; said at debug, not on every start. Any other error
          // (::1 held by another program) fails the start, as 127.0.0.1's would.
          if (!(e instanceof Deno.errors.AddrNotAvailable)) throw e;
          log.log("debug", "no ::1 on this host: IPv6 loopback not served", { error: String(e) });
        }
      }
    }
  } catch (e) {
    listener.close();
    gate.close();
    for (const s of servers) void s.shutdown();
    throw e;
  }
  const accepting = gate.serve(listener);
  return {
    addr,
    gate,
    async shutdown() {
      gate.stopAccepting();
      try {
        await Promise.all(servers.map((s) => s.shutdown()));
      } finally {
        gate.close();
      }
    },
    finished: Promise.all([accepting, ...servers.map((s) => s.finished)]).then(() => {}),
  };
}

function listenGate(hostname: string, port: number, reusePort: boolean): Deno.TcpListener {
  return Deno.listen({ hostname, port, reusePort } as Deno.TcpListenOptions);
}
