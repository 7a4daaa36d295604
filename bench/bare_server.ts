/**
 * The floor the sidecar is measured against: a bare `Deno.serve` on the same Deno with the same
 * flags as the sidecar beside it (bench/_processes.ts: the image's, or `deno task start`'s),
 * answering `GET /endpoints` with the bytes and headers the sidecar served, and `If-None-Match`
 * with 304, so the only difference left is the sidecar's own code and imports.
 *
 *   deno run --allow-net --allow-read --allow-env bench/bare_server.ts \
 *     --port=0 --body=body.json --headers=headers.json
 *
 * Prints one JSON line `{"listen":"127.0.0.1:PORT"}` on stdout once it listens. SIGTERM stops it.
 * `GET /memory` answers `Deno.memoryUsage()` (the sidecar's is in its /metrics).
 *
 * Two switches add one part of what the sidecar does, to attribute its memory:
 * `--icu` compares two strings with `localeCompare` (which loads ICU collation data), and
 * `--watch=SERVICE` lists and watches that Service's EndpointSlices over TLS with
 * `Deno.createHttpClient` and `fetch`, as the sidecar does in a pod (same environment:
 * KUBERNETES_SERVICE_HOST/PORT and KUBERNETES_POD_DISCOVERY_SERVICE_ACCOUNT_DIR).
 *
 * @module
 */

function flag(name: string): string | undefined {
  const prefix = `--${name}=`;
  return Deno.args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

const port = Number(flag("port") ?? "0");
const bodyFile = flag("body");
const headersFile = flag("headers");
// The body as a string, as the sidecar keeps it (ServiceView.endpointsBody), so both encode per response.
const body = bodyFile ? Deno.readTextFileSync(bodyFile) : '{"kind":"Endpoints"}';
const headers: Record<string, string> = headersFile
  ? JSON.parse(Deno.readTextFileSync(headersFile))
  : { "Content-Type": "application/json; charset=utf-8", ETag: '"bare"' };
const etag = headers.ETag ?? headers.etag ?? '"bare"';

const ac = new AbortController();
Deno.addSignalListener("SIGTERM", () => ac.abort());
const server = Deno.serve({
  hostname: "127.0.0.1",
  port,
  signal: ac.signal,
  onListen: (addr) => console.log(JSON.stringify({ listen: `${addr.hostname}:${addr.port}` })),
}, (req) => {
  // The bench's reading of the JavaScript heap (never asked during a measured load).
  if (req.url.endsWith("/memory")) return Response.json(Deno.memoryUsage());
  if (!req.url.endsWith("/endpoints")) return new Response("not found", { status: 404 });
  if (req.headers.get("If-None-Match") === etag) {
    return new Response(null, { status: 304, headers });
  }
  return new Response(body, { headers });
});

if (Deno.args.includes("--icu")) {
  if (["b", "a"].sort((x, y) => x.localeCompare(y))[0] !== "a") throw new Error("unreachable");
}
const watch = flag("watch");
if (watch) void watchSlices(watch, ac.signal);

/** List, then watch (reading the stream to the end) the slices of one Service. */
async function watchSlices(service: string, signal: AbortSignal): Promise<void> {
  const dir = Deno.env.get("KUBERNETES_POD_DISCOVERY_SERVICE_ACCOUNT_DIR")!;
  const token = Deno.readTextFileSync(`${dir}/token`).trim();
  const ns = Deno.readTextFileSync(`${dir}/namespace`).trim();
  const client = Deno.createHttpClient({ caCerts: [Deno.readTextFileSync(`${dir}/ca.crt`)] });
  const host = Deno.env.get("KUBERNETES_SERVICE_HOST");
  const port = Deno.env.get("KUBERNETES_SERVICE_PORT");
  const base = `https://${host}:${port}/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`;
  const selector = encodeURIComponent(`kubernetes.io/service-name=${service}`);
  const headers = { Authorization: `Bearer ${token}` };
  const list = await fetch(`${base}?resourceVersion=0&labelSelector=${selector}`, {
    headers,
    client,
    signal,
  });
  const rv = (await list.json()).metadata.resourceVersion;
  const w = await fetch(
    `${base}?watch=1&allowWatchBookmarks=true&resourceVersion=${rv}&labelSelector=${selector}`,
    { headers, client, signal },
  );
  try {
    for await (const _ of w.body!.pipeThrough(new TextDecoderStream())) {
      // events are read and dropped
    }
  } catch {
    // stopped
  }
}

await server.finished;
