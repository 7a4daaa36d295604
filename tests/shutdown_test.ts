/**
 * The shutdown promises of README on a real sidecar process whose drain is held by a client
 * that never reads: a Service of 20,000 endpoints (a ~3 MB answer) asked for several times on
 * one pipelined connection fills both socket buffers, so the HTTP server cannot finish the
 * requests in flight. The grace then ends the process with exit 1, and a second signal during
 * the drain exits 1 at once.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createEndpointSlice, createNamespace } from "./support/cluster/fixtures.ts";
import { sleep, waitFor } from "./support/cluster/wait.ts";
import { podMount, type SidecarProcess, spawnSidecar } from "./support/sidecar.ts";
import { LIVE_TEST as T } from "./support/options.ts";

/** Slices of 1,000 endpoints (the API's limit per slice): 20,000 endpoints, ~3 MB of JSON. */
const SLICES = 20;
/** Answers asked for on the connection that never reads (each ~3 MB, together far more than
 * loopback's socket buffers take). */
const PIPELINED = 4;
/** README: past this after the first signal, the process exits anyway (main.ts). */
const GRACE_MS = 5_000;
/** The drain of blocking queries and SSE streams is over by then (lib/sidecar.ts). */
const DRAIN_OVER_MS = 3_000;

/** A sidecar serving one big Service, and a connection that asked for it and never reads. */
async function heldSidecar(): Promise<
  { sidecar: SidecarProcess; conn: Deno.TcpConn; close: () => Promise<void> }
> {
  const ns = await createNamespace("grace");
  for (let s = 0; s < SLICES; s++) {
    await createEndpointSlice(ns, {
      metadata: { name: `big-${s}`, labels: { "kubernetes.io/service-name": "big" } },
      addressType: "IPv4",
      endpoints: Array.from({ length: 1_000 }, (_, i) => ({
        addresses: [`10.${100 + s}.${i >> 8}.${i & 255}`],
        conditions: { ready: true },
      })),
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    });
  }
  const mount = await podMount(ns);
  const sidecar = await spawnSidecar({ env: mount.env, args: ["--service-name=big"] });
  const path = `/v1/services/${ns}/big`;
  let bytes = 0;
  await waitFor(async () => {
    const r = await sidecar.request(path);
    bytes = r.text.length;
    return r.status === 200 && r.json().endpoints.length === SLICES * 1_000;
  }, { timeoutMs: 30_000, intervalMs: 500 });
  assert.ok(bytes > 2_000_000, `the answer is ${bytes} bytes, too small to fill the buffers`);
  const { port } = new URL(sidecar.url);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
  const request = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
  await conn.write(new TextEncoder().encode(request.repeat(PIPELINED)));
  // Let the server write what the buffers take and block on the rest.
  await sleep(1_000);
  return {
    sidecar,
    conn,
    close: async () => {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
      await sidecar.stop("SIGKILL");
      await mount.remove();
    },
  };
}

/** Milliseconds until the process exits, and its code; `limitMs` bounds the wait. */
async function exitWithin(
  sidecar: SidecarProcess,
  limitMs: number,
): Promise<{ ms: number; code: number | undefined }> {
  const t = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const code = await Promise.race([
    sidecar.status.then((s) => s.code),
    new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), limitMs)),
  ]);
  clearTimeout(timer);
  return { ms: performance.now() - t, code };
}

Deno.test(
  "a client that never reads holds the drain, and the process exits 1 at the 5 s grace",
  T,
  async () => {
    const { sidecar, close } = await heldSidecar();
    try {
      Deno.kill(sidecar.pid, "SIGTERM");
      const early = await exitWithin(sidecar, DRAIN_OVER_MS);
      assert.equal(
        early.code,
        undefined,
        `exited ${early.code} after ${early.ms.toFixed(0)} ms: the drain was not held, ` +
          "so this test checks no grace",
      );
      const late = await exitWithin(sidecar, GRACE_MS + 3_000 - DRAIN_OVER_MS);
      const total = DRAIN_OVER_MS + late.ms;
      assert.equal(late.code, 1, `still running ${total.toFixed(0)} ms after SIGTERM`);
      assert.ok(
        total >= GRACE_MS - 500 && total < GRACE_MS + 2_000,
        `exited ${total.toFixed(0)} ms after SIGTERM; the grace is ${GRACE_MS} ms`,
      );
    } finally {
      await close();
    }
  },
);

Deno.test(
  "a second SIGTERM during a held drain exits 1 at once",
  T,
  async () => {
    const { sidecar, close } = await heldSidecar();
    try {
      Deno.kill(sidecar.pid, "SIGTERM");
      const first = await exitWithin(sidecar, 1_000);
      assert.equal(first.code, undefined, "the first signal's drain was not held");
      Deno.kill(sidecar.pid, "SIGTERM");
      const second = await exitWithin(sidecar, GRACE_MS);
      assert.equal(second.code, 1, "the second signal did not end the process");
      assert.ok(
        second.ms < 1_000,
        `exited ${second.ms.toFixed(0)} ms after the second signal, not at once`,
      );
    } finally {
      await close();
    }
  },
);
