/**
 * lib/kube_client.ts in a Pod: a cluster CA rotated in the service-account mount (the kubelet
 * swaps its `..data` symlink) is trusted once the connection is made anew after a failure, with
 * no restart. The API server is stood in for by a server whose certificate tls-ca.crt signed;
 * ca.crt is another CA. Each case runs in a child process (tests/support/ca_rotation_probe.ts),
 * since Deno builds its root store once per process.
 */
import assert from "node:assert/strict";
import { LIVE_TEST as T } from "../support/options.ts";
import { tlsServer } from "../support/tls_server.ts";

const testdata = (f: string) => new URL(`testdata/${f}`, import.meta.url).pathname;
const PROBE = new URL("../support/ca_rotation_probe.ts", import.meta.url).pathname;

/** The probe's answers before and after the rotation from `first` to `second`. */
async function rotate(first: string, second: string): Promise<string> {
  const server = tlsServer();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", PROBE, String(server.addr.port), first, second],
      env: { DENO_TLS_CA_STORE: "mozilla" },
      stdout: "piped",
      stderr: "inherit",
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } finally {
    await server.shutdown();
  }
}

Deno.test(
  "in a cluster, the CA the kubelet rotates into ca.crt is trusted after the next reconnect, without a restart",
  T,
  async () => {
    assert.equal(await rotate(testdata("ca.crt"), testdata("tls-ca.crt")), "refused accepted");
  },
);

Deno.test(
  "in a cluster, a rotation to a bundle of the old and the new CA keeps the connection trusted",
  T,
  async () => {
    const bundle = `${testdata("ca.crt")}+${testdata("tls-ca.crt")}`;
    assert.equal(await rotate(testdata("tls-ca.crt"), bundle), "accepted accepted");
    assert.equal(await rotate(testdata("ca.crt"), bundle), "refused accepted");
  },
);
