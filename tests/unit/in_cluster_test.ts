/** In-cluster mode of lib/kube_client.ts as README promises it: the mounted token is re-read every
 * minute (not only after a 401), and an IPv6 KUBERNETES_SERVICE_HOST is put in brackets. Time is
 * driven by replacing `Date.now`, and requests are caught by replacing `fetch`: no socket. */
import assert from "node:assert/strict";
import { connect, TOKEN_RELOAD_INTERVAL_MS } from "../../lib/kube_client.ts";

const CA = Deno.readTextFileSync(new URL("./testdata/ca.crt", import.meta.url));

/** Runs `fn` with `Date.now` and `fetch` replaced; restores both however it ends. */
async function withFakes(
  fn: (clock: { ms: number }, seen: { url: string; auth: string | null }[]) => Promise<void>,
): Promise<void> {
  const [realNow, realFetch] = [Date.now, globalThis.fetch];
  const clock = { ms: Date.parse("2026-12-04T10:00:00Z") };
  const seen: { url: string; auth: string | null }[] = [];
  Date.now = () => clock.ms;
  globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    seen.push({ url: String(input), auth: new Headers(init?.headers).get("authorization") });
    return Promise.resolve(new Response("{}"));
  };
  try {
    await fn(clock, seen);
  } finally {
    Date.now = realNow;
    globalThis.fetch = realFetch;
  }
}

Deno.test("in a pod the token is re-read once a minute has passed, and an IPv6 API address gets brackets", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kpd-sa-" });
  try {
    await Deno.writeTextFile(`${dir}/ca.crt`, CA);
    await Deno.writeTextFile(`${dir}/token`, "first\n");
    await Deno.writeTextFile(`${dir}/namespace`, "ns");
    await withFakes(async (clock, seen) => {
      let reloads = 0;
      const env = { KUBERNETES_SERVICE_HOST: "fd00:10:96::1", KUBERNETES_SERVICE_PORT: "443" };
      const conn = await connect({
        serviceAccountDir: dir,
        env: (n) => env[n as keyof typeof env],
        onTokenReload: () => reloads++,
      });
      try {
        assert.equal(conn.server, "https://[fd00:10:96::1]:443");
        await conn.fetch("/api");
        assert.equal(seen[0]!.url, "https://[fd00:10:96::1]:443/api");
        assert.equal(seen[0]!.auth, "Bearer first");
        // The kubelet rotates the token; until a minute has passed the read one is used.
        await Deno.writeTextFile(`${dir}/token`, "second\n");
        clock.ms += TOKEN_RELOAD_INTERVAL_MS - 1_000;
        await conn.fetch("/api");
        assert.equal(seen[1]!.auth, "Bearer first");
        clock.ms += 1_000;
        await conn.fetch("/api");
        assert.equal(seen[2]!.auth, "Bearer second", "re-read after a minute, without a 401");
        assert.equal(reloads, 1);
        assert.equal(TOKEN_RELOAD_INTERVAL_MS, 60_000, "README: every minute");
      } finally {
        conn.close();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
