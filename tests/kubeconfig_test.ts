/**
 * Kubeconfig mode against the real control plane, as on a laptop: exec plugins (re-run after a
 * 401), rotating token files and client certificates, merged KUBECONFIG files and an http://
 * server in front of the API server. Each credential change is made the way it happens for real
 * (a ServiceAccount deleted and re-created, a Role revoked), then a Pod added afterwards must be
 * served within seconds by the same process.
 */
import assert from "node:assert/strict";
import { createProxy } from "./support/cluster/faults.ts";
import { createNamespace, createPods, createService } from "./support/cluster/fixtures.ts";
import { kube, testCluster } from "./support/cluster/http.ts";
import { createServiceAccount, grantRole, mintToken, revokeRole } from "./support/cluster/rbac.ts";
import { sleep, uniqueName, waitFor } from "./support/cluster/wait.ts";
import {
  execPlugin,
  kubeconfigObject,
  signClientCert,
  writeKubeconfigObject,
} from "./support/kubeconfigs.ts";
import {
  DISCOVERY_RULES,
  SIDECAR_PERMISSIONS,
  type SidecarProcess,
  spawnSidecar,
} from "./support/sidecar.ts";
import { LIVE_TEST as T } from "./support/options.ts";

/** `deno task start`'s permissions: exec plugins need --allow-run. */
const START_PERMISSIONS = [...SIDECAR_PERMISSIONS, "--allow-run"];
/** "Within seconds": the reflector's first backoff after a 401 is 0.8–1.6 s. */
const SERVED_WITHIN_MS = 15_000;

/** The ready addresses the sidecar serves on /endpoints, sorted. */
async function ready(sidecar: SidecarProcess): Promise<string[]> {
  const r = await sidecar.request("/endpoints");
  if (r.status !== 200) return [];
  return (r.json().subsets ?? []).flatMap((s: { addresses?: { ip: string }[] }) =>
    (s.addresses ?? []).map((a) => a.ip)
  ).sort();
}

/** A namespace with Service web and one ready Pod. */
async function webNamespace(prefix: string): Promise<string> {
  const ns = await createNamespace(prefix);
  await createService(ns, "web");
  await createPods(ns, 1, { labels: { app: "web" }, nodeName: `${prefix}-node`, prefix: "web" });
  return ns;
}

/** Adds a second ready Pod and waits until the sidecar serves both, with no restart. */
async function servesAChangeMadeNow(sidecar: SidecarProcess, ns: string): Promise<void> {
  await createPods(ns, 1, { labels: { app: "web" }, nodeName: "later", prefix: "web", start: 1 });
  await waitFor(async () => (await ready(sidecar)).length === 2, {
    timeoutMs: SERVED_WITHIN_MS,
    message: `a Pod added after the credential change served; stderr:\n${sidecar.stderr()}`,
  });
  assert.equal(await alive(sidecar), true, "the same sidecar process serves it");
}

async function alive(sidecar: SidecarProcess): Promise<boolean> {
  return await Promise.race([sidecar.status.then(() => false), sleep(100).then(() => true)]);
}

/** Deletes and re-creates a ServiceAccount (its RoleBinding stays): its old tokens get 401. */
async function recreateServiceAccount(ns: string, sa: string, oldToken: string): Promise<string> {
  const path = `/api/v1/namespaces/${ns}/serviceaccounts/${sa}`;
  assert.equal((await kube("DELETE", path)).status, 200);
  const probe = `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`;
  await waitFor(async () => (await kube("GET", probe, { token: oldToken })).status === 401, {
    message: "the old token refused with 401",
  });
  await createServiceAccount(ns, sa);
  return await mintToken(ns, sa);
}

async function withTempDir<R>(fn: (dir: string) => Promise<R>): Promise<R> {
  const dir = await Deno.makeTempDir({ prefix: "kpd-kubeconfig-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (
  const [label, apiVersion, expires] of [
    [
      "client.authentication.k8s.io/v1, no expirationTimestamp",
      "client.authentication.k8s.io/v1",
      false,
    ],
    ["v1beta1, an expirationTimestamp an hour ahead", "client.authentication.k8s.io/v1beta1", true],
  ] as const
) {
  Deno.test(
    `an exec plugin (${label}) is run again at once after a 401 and its new token serves a later change without restart`,
    T,
    async () => {
      const ns = await webNamespace("exec");
      const sa = uniqueName("plugin");
      await createServiceAccount(ns, sa, { rules: DISCOVERY_RULES });
      const token = await mintToken(ns, sa);
      const plugin = await execPlugin({ apiVersion, exec: { provideClusterInfo: true } });
      await plugin.setToken(token);
      if (expires) await plugin.setExpires(new Date(Date.now() + 3600_000));
      const proxy = await createProxy();
      await withTempDir(async (dir) => {
        await writeKubeconfigObject(
          `${dir}/config`,
          kubeconfigObject({ exec: plugin.exec }, { server: proxy.url, namespace: ns }),
        );
        const sidecar = await spawnSidecar({
          denoFlags: START_PERMISSIONS,
          args: ["--service-name=web", `--kubeconfig=${dir}/config`],
        });
        try {
          await waitFor(async () => (await ready(sidecar)).length === 1);
          const first = await plugin.runs();
          assert.equal(first.length, 1, "one run serves the list and the watch");
          const info = first[0] as { apiVersion: string; spec: Record<string, unknown> };
          assert.equal(info.apiVersion, apiVersion);
          assert.equal(info.spec.interactive, false);
          const cluster = info.spec.cluster as Record<string, unknown>;
          assert.equal(cluster.server, proxy.url, "provideClusterInfo gives the server");
          assert.equal(cluster["certificate-authority-data"], btoa(testCluster().caPem));

          await plugin.setToken(await recreateServiceAccount(ns, sa, token));
          await proxy.cut();
          await servesAChangeMadeNow(sidecar, ns);
          assert.ok((await plugin.runs()).length >= 2, "the plugin ran again");
        } finally {
          await sidecar.stop();
          await proxy.close();
          await plugin.remove();
        }
      });
    },
  );
}

Deno.test(
  "an exec plugin's client certificate is used for the connection, and its next one once the first expires",
  T,
  async () => {
    const ns = await webNamespace("execcert");
    const [user1, user2] = [uniqueName("plugin-cert"), uniqueName("plugin-cert")];
    const grant1 = await grantRole(ns, { kind: "User", name: user1 }, DISCOVERY_RULES);
    await grantRole(ns, { kind: "User", name: user2 }, DISCOVERY_RULES);
    const first = await signClientCert(user1);
    const plugin = await execPlugin();
    await plugin.setMode("cert");
    await plugin.setCert(first.crt, first.key);
    const expiry = Date.now() + 8_000;
    await plugin.setExpires(new Date(expiry));
    const proxy = await createProxy();
    await withTempDir(async (dir) => {
      await writeKubeconfigObject(
        `${dir}/config`,
        kubeconfigObject({ exec: plugin.exec }, { server: proxy.url, namespace: ns }),
      );
      const sidecar = await spawnSidecar({
        denoFlags: START_PERMISSIONS,
        args: ["--service-name=web", `--kubeconfig=${dir}/config`],
      });
      try {
        await waitFor(async () => (await ready(sidecar)).length === 1);
        // The next certificate is for a user who may read; the first one's user no longer may
        // (403, which is no reason to run the plugin: only its expiry is).
        const second = await signClientCert(user2);
        await plugin.setCert(second.crt, second.key);
        await plugin.setExpires(undefined);
        await revokeRole(ns, grant1);
        await sleep(Math.max(0, expiry - Date.now()) + 200);
        await proxy.cut();
        await servesAChangeMadeNow(sidecar, ns);
        assert.ok((await plugin.runs()).length >= 2, "the plugin ran again after the expiry");
      } finally {
        await sidecar.stop();
        await proxy.close();
        await plugin.remove();
      }
    });
  },
);

for (
  const [what, setup, pattern] of [
    [
      "is missing",
      {
        command: "/nonexistent/kpd-auth-plugin",
        installHint: "Install kpd-auth-plugin:\n  see the team wiki",
      },
      /exec plugin "\/nonexistent\/kpd-auth-plugin" .*not found.*Install kpd-auth-plugin: see the team wiki/,
    ],
    [
      "exits non-zero",
      { mode: "fail" },
      /exec plugin ".*exec_plugin\.sh" .*exited with code 3.*not logged in/,
    ],
    [
      "prints garbage",
      { mode: "garbage" },
      /exec plugin ".*exec_plugin\.sh" .*printed no ExecCredential/,
    ],
  ] as const
) {
  Deno.test(
    `an exec plugin that ${what}: one clear log line, /readyz stays 503, the sidecar keeps running`,
    T,
    async () => {
      const ns = await webNamespace("execbad");
      const plugin = await execPlugin({
        exec: Object.fromEntries(Object.entries(setup).filter(([k]) => k !== "mode")),
      });
      if ("mode" in setup) await plugin.setMode(setup.mode);
      await withTempDir(async (dir) => {
        await writeKubeconfigObject(
          `${dir}/config`,
          kubeconfigObject({ exec: plugin.exec }, { namespace: ns }),
        );
        const sidecar = await spawnSidecar({
          denoFlags: START_PERMISSIONS,
          args: ["--service-name=web", `--kubeconfig=${dir}/config`],
        });
        try {
          const said = (l: Record<string, unknown>) =>
            Object.values(l).find((v) => typeof v === "string" && pattern.test(v)) as string;
          const line = await sidecar.waitLog((l) => said(l) !== undefined);
          assert.equal(typeof line.msg, "string", "a JSON log line, not a crash");
          assert.ok(!said(line).includes("\n"), `one line: ${said(line)}`);
          assert.equal((await sidecar.request("/readyz")).status, 503);
          await sleep(1_000);
          assert.equal(await alive(sidecar), true);
          assert.equal((await sidecar.request("/readyz")).status, 503);
        } finally {
          await sidecar.stop();
          await plugin.remove();
        }
      });
    },
  );
}

Deno.test(
  "an exec plugin with interactiveMode Always stops the sidecar at start with one line: there is no terminal to prompt on",
  T,
  async () => {
    const plugin = await execPlugin({ exec: { interactiveMode: "Always" } });
    await withTempDir(async (dir) => {
      await writeKubeconfigObject(`${dir}/config`, kubeconfigObject({ exec: plugin.exec }));
      const sidecar = await spawnSidecar({
        denoFlags: START_PERMISSIONS,
        args: ["--service-name=web", `--kubeconfig=${dir}/config`],
        waitStarted: false,
      });
      try {
        const timeout = sleep(20_000).then(() => "still running after 20 s");
        const exited = sidecar.status.then((s) => `exit code ${s.code}`);
        assert.equal(await Promise.race([exited, timeout]), "exit code 2");
        const lines = sidecar.stderr().trim().split("\n");
        assert.equal(lines.length, 1, sidecar.stderr());
        assert.match(
          lines[0],
          /config users\["u"\]\.user\.exec: interactiveMode Always .*no terminal.*IfAvailable or Never/,
        );
        assert.equal((await plugin.runs()).length, 0, "the plugin never ran");
      } finally {
        await sidecar.stop();
        await plugin.remove();
      }
    });
  },
);

Deno.test(
  "a tokenFile rotated on disk, the old token revoked: a later change is served without restart",
  T,
  async () => {
    const ns = await webNamespace("tokenfile");
    const sa = uniqueName("tokenfile");
    await createServiceAccount(ns, sa, { rules: DISCOVERY_RULES });
    const token = await mintToken(ns, sa);
    const proxy = await createProxy();
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/token`, token);
      await writeKubeconfigObject(
        `${dir}/config`,
        kubeconfigObject({ tokenFile: `${dir}/token` }, { server: proxy.url, namespace: ns }),
      );
      const sidecar = await spawnSidecar({
        args: ["--service-name=web", `--kubeconfig=${dir}/config`],
      });
      try {
        await waitFor(async () => (await ready(sidecar)).length === 1);
        const next = await recreateServiceAccount(ns, sa, token);
        await Deno.writeTextFile(`${dir}/token.tmp`, next);
        await Deno.rename(`${dir}/token.tmp`, `${dir}/token`);
        await proxy.cut();
        await servesAChangeMadeNow(sidecar, ns);
      } finally {
        await sidecar.stop();
        await proxy.close();
      }
    });
  },
);

Deno.test(
  "a client certificate rotated on disk, the old one's user revoked: a later change is served without restart",
  T,
  async () => {
    const ns = await webNamespace("certfile");
    const [user1, user2] = [uniqueName("cert-file"), uniqueName("cert-file")];
    const grant1 = await grantRole(ns, { kind: "User", name: user1 }, DISCOVERY_RULES);
    await grantRole(ns, { kind: "User", name: user2 }, DISCOVERY_RULES);
    const first = await signClientCert(user1);
    const proxy = await createProxy();
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/client.crt`, first.crt);
      await Deno.writeTextFile(`${dir}/client.key`, first.key);
      await writeKubeconfigObject(
        `${dir}/config`,
        kubeconfigObject(
          { "client-certificate": "client.crt", "client-key": "client.key" },
          { server: proxy.url, namespace: ns },
        ),
      );
      const sidecar = await spawnSidecar({
        args: ["--service-name=web", `--kubeconfig=${dir}/config`],
      });
      try {
        await waitFor(async () => (await ready(sidecar)).length === 1);
        const second = await signClientCert(user2);
        // cert-manager and kubelet write the key and certificate one after the other.
        await Deno.writeTextFile(`${dir}/client.key`, second.key);
        await Deno.writeTextFile(`${dir}/client.crt`, second.crt);
        await revokeRole(ns, grant1);
        await proxy.cut();
        await servesAChangeMadeNow(sidecar, ns);
      } finally {
        await sidecar.stop();
        await proxy.close();
      }
    });
  },
);

Deno.test(
  "KUBECONFIG=a:b with the context in a and the user in b works as kubectl: first file wins per name",
  T,
  async () => {
    const ns = await webNamespace("merged");
    const sa = uniqueName("merged");
    await createServiceAccount(ns, sa, { rules: DISCOVERY_RULES });
    const token = await mintToken(ns, sa);
    await withTempDir(async (dir) => {
      const c = testCluster();
      await Deno.writeTextFile(`${dir}/ca.crt`, c.caPem);
      // a: the current context and its cluster (CA relative to a's directory), no users.
      await Deno.mkdir(`${dir}/a`);
      await Deno.copyFile(`${dir}/ca.crt`, `${dir}/a/ca.crt`);
      await writeKubeconfigObject(`${dir}/a/config`, {
        apiVersion: "v1",
        kind: "Config",
        "current-context": "c",
        clusters: [{ name: "k", cluster: { server: c.server, "certificate-authority": "ca.crt" } }],
        contexts: [{ name: "c", context: { cluster: "k", user: "u", namespace: ns } }],
      });
      // b: the user, and a context and cluster of the same names that lose to a's.
      await writeKubeconfigObject(`${dir}/b`, {
        apiVersion: "v1",
        kind: "Config",
        "current-context": "elsewhere",
        clusters: [{ name: "k", cluster: { server: "https://127.0.0.1:1" } }],
        users: [{ name: "u", user: { token } }],
        contexts: [
          { name: "c", context: { cluster: "k", user: "nobody", namespace: "default" } },
          { name: "elsewhere", context: { cluster: "k", user: "u" } },
        ],
      });
      const sidecar = await spawnSidecar({
        args: ["--service-name=web"],
        env: { KUBECONFIG: `${dir}/a/config::${dir}/missing:${dir}/b` },
      });
      try {
        await waitFor(async () => (await ready(sidecar)).length === 1);
        await servesAChangeMadeNow(sidecar, ns);
      } finally {
        await sidecar.stop();
      }
    });
  },
);

/** A tiny `kubectl proxy`: plain HTTP in front of the API server, adding the admin token. */
function forwardingProxy(): { url: string; requests: () => number; close: () => Promise<void> } {
  const c = testCluster();
  const client = Deno.createHttpClient({ caCerts: [c.caPem] });
  let requests = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    requests++;
    const url = new URL(req.url);
    const headers = new Headers(req.headers);
    headers.set("authorization", `Bearer ${c.adminToken}`);
    headers.delete("host");
    return fetch(`${c.server}${url.pathname}${url.search}`, {
      method: req.method,
      headers,
      body: req.body,
      client,
      signal: req.signal,
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests: () => requests,
    async close() {
      await server.shutdown();
      client.close();
    },
  };
}

Deno.test(
  "an http:// server (kubectl proxy) works: no TLS, no credentials, a later change served",
  T,
  async () => {
    const ns = await webNamespace("httpproxy");
    const proxy = forwardingProxy();
    await withTempDir(async (dir) => {
      await writeKubeconfigObject(
        `${dir}/config`,
        kubeconfigObject({}, { server: proxy.url, cluster: {}, namespace: ns }),
      );
      const sidecar = await spawnSidecar({
        args: ["--service-name=web", `--kubeconfig=${dir}/config`],
      });
      try {
        await waitFor(async () => (await ready(sidecar)).length === 1, {
          message: `synced through the http proxy; stderr:\n${sidecar.stderr()}`,
        });
        await servesAChangeMadeNow(sidecar, ns);
        // A streaming list is one request; a list and a watch are two.
        assert.ok(proxy.requests() >= 1, "the sidecar went through the proxy");
      } finally {
        await sidecar.stop();
        await proxy.close();
      }
    });
  },
);

/** Asserts that no 8 characters in a row of any of `secrets` appear in `text`. */
function assertNoPartOf(text: string, secrets: string[]): void {
  for (const secret of secrets) {
    for (let i = 0; i + 8 <= secret.length; i++) {
      const part = secret.slice(i, i + 8);
      assert.ok(!text.includes(part), `a part of a credential (${part}) is in the log`);
    }
  }
}

Deno.test(
  "no token ever reaches the log, at debug level, through a 401, a plugin run again and a token that never works again",
  T,
  async () => {
    const ns = await webNamespace("nolog");
    const sa = uniqueName("nolog");
    await createServiceAccount(ns, sa, { rules: DISCOVERY_RULES });
    const token = await mintToken(ns, sa);
    const plugin = await execPlugin();
    await plugin.setToken(token);
    const proxy = await createProxy();
    await withTempDir(async (dir) => {
      // Two users: one by exec plugin, one by a token written in the kubeconfig.
      await writeKubeconfigObject(
        `${dir}/exec`,
        kubeconfigObject({ exec: plugin.exec }, { server: proxy.url, namespace: ns }),
      );
      await writeKubeconfigObject(
        `${dir}/static`,
        kubeconfigObject({ token }, { server: proxy.url, namespace: ns }),
      );
      const args = ["--service-name=web", "--log-level=debug"];
      const execSidecar = await spawnSidecar({
        denoFlags: START_PERMISSIONS,
        args: [...args, `--kubeconfig=${dir}/exec`],
      });
      const staticSidecar = await spawnSidecar({ args: [...args, `--kubeconfig=${dir}/static`] });
      let next = "";
      try {
        await waitFor(async () => (await ready(execSidecar)).length === 1);
        await waitFor(async () => (await ready(staticSidecar)).length === 1);
        next = await recreateServiceAccount(ns, sa, token);
        await plugin.setToken(next);
        await proxy.cut();
        await servesAChangeMadeNow(execSidecar, ns);
        // The static token is refused from now on: the 401s it gets are logged, not it.
        await staticSidecar.waitLog((l) => /401|nauthorized/.test(JSON.stringify(l)));
      } finally {
        await execSidecar.stop();
        await staticSidecar.stop();
        await proxy.close();
        await plugin.remove();
      }
      assert.ok(execSidecar.logs.length > 5 && staticSidecar.logs.length > 5, "they logged");
      assertNoPartOf(execSidecar.stderr() + staticSidecar.stderr(), [token, next]);
    });
  },
);
