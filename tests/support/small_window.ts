/**
 * Clients with a small TCP receive window: a socket opened through libc (FFI) with SO_RCVBUF
 * set before connect, which Deno.connect cannot do, so the sidecar's writes to it meet a full
 * window at once, as they would from a slow or stopped reader over a real network. Only for
 * tests; a client sends its request and then never reads.
 *
 * @module
 */

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;

const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
});

/** An open socket that never reads; `close` releases it. */
export interface NeverReader {
  /** Closes the socket (at most once). */
  close(): void;
}

/**
 * Connects to 127.0.0.1:`port` with a receive buffer of `rcvbuf` bytes, sends `GET path` and
 * never reads. Blocking calls, each brief on loopback.
 */
export function openNeverReader(port: number, path: string, rcvbuf: number): NeverReader {
  const fd = libc.symbols.socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw new Error("socket() failed");
  const size = new Int32Array([rcvbuf]);
  if (libc.symbols.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, new Uint8Array(size.buffer), 4) !== 0) {
    libc.symbols.close(fd);
    throw new Error("setsockopt(SO_RCVBUF) failed");
  }
  // struct sockaddr_in: family (host order), port and address (network order), zero padding.
  const addr = new Uint8Array(16);
  const view = new DataView(addr.buffer);
  view.setUint16(0, AF_INET, true);
  view.setUint16(2, port, false);
  addr.set([127, 0, 0, 1], 4);
  if (libc.symbols.connect(fd, addr, 16) !== 0) {
    libc.symbols.close(fd);
    throw new Error(`connect() to 127.0.0.1:${port} failed`);
  }
  const request = new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  if (Number(libc.symbols.write(fd, request, BigInt(request.byteLength))) !== request.byteLength) {
    libc.symbols.close(fd);
    throw new Error("write() of the request failed");
  }
  let open = true;
  return {
    close() {
      if (open) libc.symbols.close(fd);
      open = false;
    },
  };
}
