/**
 * lib/trust.ts: the API server is trusted on the kubeconfig's CA (or the Pod's ca.crt) only, not
 * on a root of the platform's store. The platform's store is stood in for by
 * DENO_TLS_CA_STORE=system with SSL_CERT_FILE naming a CA of the test's own (tls-ca.crt), which
 * signed the server's certificate; the kubeconfig names another CA (ca.crt).
 */
import assert from "node:assert/strict";
import { LIVE_TEST as T } from "../support/options.ts";
import { tlsServer } from "../support/tls_server.ts";

const testdata = (f: string) => new URL(`testdata/${f}`, import.meta.url).pathname;
const PROBE = new URL("../support/trust_probe.ts", import.meta.url).pathname;

/** What the probe process answers against a server signed by tls-ca.crt, the platform's root. */
async function probe(arg: (port: number, dir: string) => Promise<string>): Promise<string> {
  const server = tlsServer();
  const dir = await Deno.makeTempDir({ prefix: "kpd-trust-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", PROBE, await arg(server.addr.port, dir)],
      env: { DENO_TLS_CA_STORE: "system", SSL_CERT_FILE: testdata("tls-ca.crt") },
      stdout: "piped",
      stderr: "inherit",
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

function kubeconfig(dir: string, port: number, ca: string): Promise<string> {
  const path = `${dir}/config`;
  return Deno.writeTextFile(
    path,
    JSON.stringify({
      "current-context": "c",
      contexts: [{ name: "c", context: { cluster: "k", user: "u" } }],
      clusters: [{
        name: "k",
        cluster: { server: `https://127.0.0.1:${port}`, "certificate-authority": testdata(ca) },
      }],
      users: [{ name: "u", user: { token: "t" } }],
    }),
  ).then(() => path);
}

Deno.test(
  "a server certificate from a platform root that is not the kubeconfig's CA is refused",
  T,
  async () => {
    assert.equal(await probe((port, dir) => kubeconfig(dir, port, "ca.crt")), "refused");
  },
);

Deno.test(
  "the kubeconfig's own CA is still trusted with the platform's roots left out",
  T,
  async () => {
    assert.equal(await probe((port, dir) => kubeconfig(dir, port, "tls-ca.crt")), "accepted");
  },
);

Deno.test(
  "in a cluster, a server certificate from a platform root that is not the Pod's ca.crt is refused",
  T,
  async () => {
    const answer = await probe(async (port, dir) => {
      await Deno.copyFile(testdata("ca.crt"), `${dir}/ca.crt`);
      await Deno.writeTextFile(`${dir}/token`, "t");
      return `--in-cluster=${dir},127.0.0.1,${port}`;
    });
    assert.equal(answer, "refused");
  },
);
