/**
 * What a bare `Deno.serve` keeps for streams whose clients never read (issue 17 item 12; the
 * figures in docs/api.md): a server process whose streaming bodies hand one chunk per pull (up
 * to a total, optionally one pull per pace), and clients with small receive buffers that send
 * their request and never read (tests/support/small_window.ts). Once no stream has pulled for
 * 3 s, prints the bytes each stream took from JavaScript and the server's VmRSS per stream.
 * Loopback only; bounded: it ends by itself. Run in a network namespace with a small
 * `net.ipv4.tcp_wmem` to see what Deno and hyper keep when the kernel refuses too.
 *
 * `tools/deno run -A tools/never_reader_memory.ts --chunk=1536 --streams=200 [--total=65536]
 * [--pace=100] [--rcvbuf=4096]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { openNeverReader } from "../tests/support/small_window.ts";

const { values } = parseArgs({
  options: {
    serve: { type: "boolean", default: false },
    chunk: { type: "string", default: "1536" },
    streams: { type: "string", default: "200" },
    total: { type: "string", default: "Infinity" },
    pace: { type: "string", default: "0" },
    rcvbuf: { type: "string", default: "4096" },
  },
});
const CHUNK = Number(values.chunk);
const STREAMS = Number(values.streams);
const TOTAL = Number(values.total);
const PACE = Number(values.pace);
/** How long no stream may have pulled before the reading: Deno and hyper are full. */
const QUIET_MS = 3000;

const rss = () =>
  Number(Deno.readTextFileSync("/proc/self/status").match(/VmRSS:\s+(\d+) kB/)![1]) * 1024;

if (values.serve) await serve();
else await drive();

/** The server: prints its port, then one JSON line of figures; then waits to be killed. */
async function serve(): Promise<void> {
  const chunk = new Uint8Array(CHUNK).fill(97);
  const pulled: number[] = [];
  let lastPull = performance.now();
  const base = rss();
  Deno.serve({
    port: 0,
    hostname: "127.0.0.1",
    onListen: ({ port }) => console.log(port),
  }, () => {
    const i = pulled.push(0) - 1;
    return new Response(
      new ReadableStream<Uint8Array>({
        async pull(c) {
          if (pulled[i]! >= TOTAL) return new Promise(() => {});
          if (PACE) await new Promise((r) => setTimeout(r, PACE));
          pulled[i]! += CHUNK;
          lastPull = performance.now();
          c.enqueue(chunk);
        },
      }, { highWaterMark: 0 }),
    );
  });
  while (pulled.length < STREAMS || performance.now() - lastPull < QUIET_MS) {
    await new Promise((r) => setTimeout(r, 500));
  }
  const sorted = pulled.toSorted((a, b) => a - b);
  console.log(JSON.stringify({
    chunkBytes: CHUNK,
    streams: STREAMS,
    pulledKiBMedian: sorted[sorted.length >> 1]! / 1024,
    pulledKiBMax: sorted.at(-1)! / 1024,
    vmRssMB: rss() / 1e6,
    vmRssPerStreamKB: (rss() - base) / STREAMS / 1000,
  }));
  await new Promise(() => {});
}

/** Starts the server, opens the never-reading clients, prints the server's figures, ends. */
async function drive(): Promise<void> {
  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--max-old-space-size=48",
      import.meta.filename!,
      "--serve",
      ...Deno.args,
    ],
    stdout: "piped",
  }).spawn();
  const lines = server.stdout.pipeThrough(new TextDecoderStream()).values();
  const port = Number((await lines.next()).value);
  const clients = Array.from(
    { length: STREAMS },
    () => openNeverReader(port, "/", Number(values.rcvbuf)),
  );
  try {
    let text = "";
    while (!text.includes("\n")) text += (await lines.next()).value ?? "\n";
    console.log(text.trim());
  } finally {
    for (const c of clients) c.close();
    server.kill();
    await server.status;
  }
}
