/**
 * Load for the fan-out tests and bench/fanout.ts: many SSE streams and blocking queries over raw
 * TCP connections (a client that never reads is one that sends its request, reads the status
 * line and then nothing), the sidecar's flags as the image bakes them, and its resident memory.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The Deno flags of image/deno-flags.txt, with the service-account mount at `saDir`. */
export async function shippedFlags(saDir: string): Promise<string[]> {
  const text = await Deno.readTextFile(`${ROOT}image/deno-flags.txt`);
  return text.split("\n").map((l) => l.replace(/#.*/, "").trim()).filter((l) => l !== "")
    .map((f) => f.startsWith("--allow-read=") ? `--allow-read=${saDir}` : f);
}

/** VmRSS of a process in bytes. */
export async function rssBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+) kB/)![1]) * 1024;
}

/** A raw HTTP/1.1 request whose answer is read only as far as asked. */
export interface RawRequest {
  /** The response's status code. */
  status: number;
  /** Everything read so far (the head and whatever came with it). */
  text: string;
  /** The connection. */
  conn: Deno.TcpConn;
}

/** Sends `GET path` on a new connection and reads until the response head is complete. */
export async function rawGet(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<RawRequest> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  await conn.write(encoder.encode(`GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`));
  let text = "";
  const buf = new Uint8Array(4096);
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += decoder.decode(buf.subarray(0, n));
  }
  return { status: Number(text.split(" ")[1]), text, conn };
}

/** Reads a connection until it ends or errors; returns what came and how it ended. */
export async function readRest(
  conn: Deno.TcpConn,
  timeoutMs: number,
): Promise<{ text: string; ended: "eof" | "error" | "timeout" }> {
  let text = "";
  const buf = new Uint8Array(64 * 1024);
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const left = deadline - Date.now();
    if (left <= 0) return { text, ended: "timeout" };
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const n = await Promise.race([
        conn.read(buf),
        new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), left)),
      ]);
      if (n === "timeout") return { text, ended: "timeout" };
      if (n === null) return { text, ended: "eof" };
      text += decoder.decode(buf.subarray(0, n), { stream: true });
    } catch {
      return { text, ended: "error" };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Runs `fn` over `items` with at most `concurrency` in flight; results in order. */
export async function pool<T, R>(
  items: T[],
  concurrency: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

/** Closes connections, ignoring ones already closed. */
export function closeAll(conns: Deno.TcpConn[]): void {
  for (const c of conns) {
    try {
      c.close();
    } catch {
      // Already closed.
    }
  }
}

/** The events of an SSE text (`event`, `id`, `data`), skipping comments and `retry:` blocks. */
export function parseEvents(text: string): { event: string; id?: string; data: string }[] {
  const out: { event: string; id?: string; data: string }[] = [];
  for (const block of text.split("\n\n")) {
    let event = "message";
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("id: ")) id = line.slice(4);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (data.length) out.push({ event, id, data: data.join("\n") });
  }
  return out;
}

/** The body of a raw chunked HTTP/1.1 response text (head and chunk framing removed); a last
 * incomplete chunk is kept as far as it came. */
export function dechunk(text: string): string {
  let rest = text.slice(text.indexOf("\r\n\r\n") + 4);
  let body = "";
  while (rest.length) {
    const nl = rest.indexOf("\r\n");
    if (nl < 0) break;
    const size = parseInt(rest.slice(0, nl), 16);
    if (!Number.isFinite(size) || size === 0) break;
    body += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
  return body;
}

/** Reads one whole response (head and Content-Length body) from a connection. */
export async function readResponse(
  conn: Deno.TcpConn,
): Promise<{ status: number; headers: string; body: string }> {
  let bytes = new Uint8Array(0);
  const buf = new Uint8Array(16 * 1024);
  const grow = (n: number) => {
    const next = new Uint8Array(bytes.length + n);
    next.set(bytes);
    next.set(buf.subarray(0, n), bytes.length);
    bytes = next;
  };
  let headEnd = -1;
  while (true) {
    const text = decoder.decode(bytes);
    headEnd = text.indexOf("\r\n\r\n");
    if (headEnd >= 0) {
      const head = text.slice(0, headEnd);
      const length = Number(head.match(/content-length: (\d+)/i)?.[1] ?? 0);
      if (bytes.length >= headEnd + 4 + length) {
        return {
          status: Number(head.split(" ")[1]),
          headers: head,
          body: text.slice(headEnd + 4, headEnd + 4 + length),
        };
      }
    }
    const n = await conn.read(buf);
    if (n === null) throw new Error(`connection ended after ${bytes.length} bytes`);
    grow(n);
  }
}
