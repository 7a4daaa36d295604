/**
 * Raw HTTP/1.1 clients for the bench: one request over a fresh connection, read as sent (to see
 * whether the server compressed), and a minimal kept-alive client for polling a local server
 * with less overhead (and so finer time resolution) than `fetch`.
 *
 * @module
 */
import { now } from "./util.ts";

/** One raw HTTP/1.1 exchange: status line, headers (lower-cased) and the body bytes on the wire. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  /** Bytes of the body as sent (compressed if the server compressed; chunking removed). */
  wireBytes: number;
}

/** Sends one GET over a fresh TCP connection and reads the answer as sent (no decoding). */
export async function rawGet(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const lines = [`GET ${path} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close"];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const all = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
    let off = 0;
    for (const c of chunks) {
      all.set(c, off);
      off += c.length;
    }
    const headEnd = indexOf(all, [13, 10, 13, 10]);
    const head = new TextDecoder().decode(all.subarray(0, headEnd)).split("\r\n");
    const status = Number(head[0]!.split(" ")[1]);
    const h: Record<string, string> = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(":");
      h[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    let body: Uint8Array = all.subarray(headEnd + 4);
    if ((h["transfer-encoding"] ?? "").includes("chunked")) body = dechunk(body);
    return { status, headers: h, wireBytes: body.length };
  } finally {
    try {
      conn.close();
    } catch {
      // already closed by the peer
    }
  }
}

function indexOf(hay: Uint8Array, needle: number[]): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function dechunk(data: Uint8Array): Uint8Array {
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < data.length) {
    const lineEnd = indexOf(data.subarray(i), [13, 10]);
    if (lineEnd < 0) break;
    const size = parseInt(new TextDecoder().decode(data.subarray(i, i + lineEnd)), 16);
    i += lineEnd + 2;
    if (!size) break;
    out.push(data.subarray(i, i + size));
    i += size + 2;
  }
  const res = new Uint8Array(out.reduce((a, c) => a + c.length, 0));
  let off = 0;
  for (const c of out) {
    res.set(c, off);
    off += c.length;
  }
  return res;
}

/** One answer read from a {@linkcode KeepAliveClient}. */
export interface KeepAliveResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
  /** When the status line and headers had arrived (see {@linkcode now}). */
  headAt: number;
}

/**
 * A minimal HTTP/1.1 client over one kept-alive TCP connection, for polling a local server with
 * less overhead (and so finer time resolution) than `fetch`. Reads Content-Length and chunked
 * bodies; one request at a time.
 */
export class KeepAliveClient {
  #conn: Deno.TcpConn;
  #buf: Uint8Array = new Uint8Array(0);
  #encoder = new TextEncoder();
  #decoder = new TextDecoder();

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects to 127.0.0.1:port. */
  static async open(port: number): Promise<KeepAliveClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    return new KeepAliveClient(conn);
  }

  async #fill(): Promise<void> {
    const chunk = new Uint8Array(256 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) throw new Error("connection closed by the server");
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
  }

  async #take(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) await this.#fill();
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  async #line(): Promise<string> {
    let i: number;
    while ((i = indexOf(this.#buf, [13, 10])) < 0) await this.#fill();
    const line = this.#decoder.decode(this.#buf.subarray(0, i));
    this.#buf = this.#buf.slice(i + 2);
    return line;
  }

  /** Sends GET path with these headers and reads the whole answer. */
  async get(path: string, headers: Record<string, string> = {}): Promise<KeepAliveResponse> {
    const lines = [`GET ${path} HTTP/1.1`, "Host: 127.0.0.1"];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    await this.#conn.write(this.#encoder.encode(lines.join("\r\n") + "\r\n\r\n"));
    const statusLine = await this.#line();
    const h: Record<string, string> = {};
    while (true) {
      const line = await this.#line();
      if (line === "") break;
      const i = line.indexOf(":");
      h[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const headAt = now();
    const status = Number(statusLine.split(" ")[1]);
    let body: Uint8Array = new Uint8Array(0);
    if (status === 304 || status === 204) {
      // no body
    } else if (h["content-length"] !== undefined) {
      body = await this.#take(Number(h["content-length"]));
    } else if ((h["transfer-encoding"] ?? "").includes("chunked")) {
      const parts: Uint8Array[] = [];
      while (true) {
        const size = parseInt(await this.#line(), 16);
        if (!size) {
          await this.#line();
          break;
        }
        parts.push(await this.#take(size));
        await this.#line();
      }
      body = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
      let off = 0;
      for (const p of parts) {
        body.set(p, off);
        off += p.length;
      }
    }
    return { status, headers: h, body, headAt };
  }

  /** Closes the connection. */
  close(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}
