/** Kubeconfig mode of lib/kube_client.ts: paths, and the cluster fields Deno can and cannot honour. */
import assert from "node:assert/strict";
import { ConfigError } from "../../lib/config.ts";
import { connect } from "../../lib/kube_client.ts";
import { LIVE_TEST as T } from "../support/options.ts";
import { pluginExecEntry } from "../support/kubeconfigs.ts";
import { tlsServer } from "../support/tls_server.ts";

/** A self-signed CA in PEM, enough for Deno.createHttpClient to accept it. */
const CA = Deno.readTextFileSync(new URL("../../tests/unit/testdata/ca.crt", import.meta.url));

function kubeconfig(cluster: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    "current-context": "c",
    contexts: [{ name: "c", context: { cluster: "k", user: "u", namespace: "ns1" } }],
    clusters: [{ name: "k", cluster: { server: "https://127.0.0.1:6443", ...cluster } }],
    users: [{ name: "u", user: { token: "t" } }],
  });
}

async function inTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "kpd-kc-" });
  const cwd = Deno.cwd();
  try {
    Deno.chdir(dir);
    return await fn(dir);
  } finally {
    Deno.chdir(cwd);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  "--kubeconfig=kube/config (a relative path) finds ca.crt beside the kubeconfig, not in the working directory nor under config/",
  T,
  async () => {
    await inTempDir(async () => {
      // The working directory is not the kubeconfig's: only resolving against the kubeconfig's
      // own directory finds the CA.
      await Deno.mkdir("kube");
      await Deno.writeTextFile("kube/ca.crt", CA);
      await Deno.writeTextFile("kube/config", kubeconfig({ "certificate-authority": "ca.crt" }));
      const conn = await connect({ kubeconfig: "kube/config", serviceAccountDir: "/nonexistent" });
      assert.equal(conn.mode, "kubeconfig");
      assert.equal(conn.namespace, "ns1");
      conn.close();
    });
  },
);

for (
  const [field, value, pattern] of [
    ["insecure-skip-tls-verify", true, /insecure-skip-tls-verify.*certificate-authority/],
    ["tls-server-name", "api.internal", /tls-server-name.*"api\.internal".*server/],
  ] as const
) {
  Deno.test(
    `a kubeconfig with ${field} is refused with one line saying what to set instead`,
    T,
    async () => {
      await inTempDir(async (dir) => {
        await Deno.writeTextFile(`${dir}/config`, kubeconfig({ [field]: value }));
        await assert.rejects(
          connect({ kubeconfig: `${dir}/config`, serviceAccountDir: "/nonexistent" }),
          (e: unknown) => {
            assert.ok(e instanceof ConfigError, String(e));
            assert.match(e.message, pattern);
            assert.match(e.message, /^Cannot use kubeconfig /);
            assert.ok(!e.message.includes("\n"));
            return true;
          },
        );
      });
    },
  );
}

Deno.test("a kubeconfig's proxy-url is honoured: requests go through that proxy", T, async () => {
  const proxy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen = (async () => {
    const conn = await proxy.accept();
    const buf = new Uint8Array(1024);
    const n = await conn.read(buf);
    conn.close();
    return new TextDecoder().decode(buf.subarray(0, n ?? 0));
  })();
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/config`,
      kubeconfig({
        "certificate-authority-data": btoa(CA),
        "proxy-url": `http://127.0.0.1:${proxy.addr.port}`,
      }),
    );
    const conn = await connect({ kubeconfig: `${dir}/config`, serviceAccountDir: "/nonexistent" });
    await conn.fetch("/version").then((r) => r.body?.cancel(), () => {});
    const timeout = new Promise<string>((r) => setTimeout(() => r("nothing within 5 s"), 5_000));
    assert.match(await Promise.race([seen, timeout]), /^CONNECT 127\.0\.0\.1:6443 HTTP\/1\.1/);
    conn.close();
  });
  proxy.close();
});

Deno.test(
  "a kubeconfig user with a username and password sends them as basic auth, as client-go does",
  T,
  async () => {
    const seen: (string | null)[] = [];
    const server = tlsServer((req) => {
      seen.push(req.headers.get("authorization"));
      return Response.json({ major: "1", minor: "37" });
    });
    try {
      await inTempDir(async (dir) => {
        await writeAuthKubeconfig(dir, server.addr.port, { username: "admin", password: "pä:ss" });
        const conn = await connect({
          kubeconfig: `${dir}/config`,
          serviceAccountDir: "/nonexistent",
        });
        try {
          await (await conn.fetch("/version")).body?.cancel();
        } finally {
          conn.close();
        }
      });
      const utf8 = String.fromCharCode(...new TextEncoder().encode("admin:pä:ss"));
      assert.deepEqual(seen, [`Basic ${btoa(utf8)}`]);
    } finally {
      await server.shutdown();
    }
  },
);

Deno.test(
  "a kubeconfig with a YAML syntax error next to a token: one line naming the file and line, with no part of the token",
  T,
  async () => {
    const token = "kpd" + crypto.randomUUID().replaceAll("-", "") + "Zq9";
    for (
      const text of [
        `users:\n- name: u\n  user:\n    token: ${token}\n   bad: [\n`,
        `users:\n- name: u\n  user:\n    token: "${token}\n`,
        `users: [{name: u, user: {token: ${token}}\n`,
        `users:\n- name: u\n  user:\n    token: ${token}\n\tindented: with a tab\n`,
      ]
    ) {
      await inTempDir(async (dir) => {
        await Deno.writeTextFile(`${dir}/config`, text);
        await assert.rejects(
          connect({ kubeconfig: `${dir}/config`, serviceAccountDir: "/nonexistent" }),
          (e: unknown) => {
            assert.ok(e instanceof ConfigError, String(e));
            assert.ok(!e.message.includes("\n"), e.message);
            assert.ok(e.message.includes(`${dir}/config`), e.message);
            assert.match(e.message, /line \d+, column \d+/);
            for (let i = 0; i + 4 <= token.length; i++) {
              assert.ok(!e.message.includes(token.slice(i, i + 4)), `token part in: ${e.message}`);
            }
            return true;
          },
        );
      });
    }
  },
);

Deno.test(
  "the CA, client certificate and key files are read once, not per request",
  T,
  async () => {
    const testdata = (f: string) => new URL(`testdata/${f}`, import.meta.url).pathname;
    const server = tlsServer();
    const reads: string[] = [];
    const original = Deno.readTextFileSync;
    try {
      await inTempDir(async (dir) => {
        for (const f of ["tls-ca.crt", "tls-server.crt", "tls-server.key"]) {
          await Deno.copyFile(testdata(f), `${dir}/${f}`);
        }
        await Deno.writeTextFile(
          `${dir}/config`,
          JSON.stringify({
            "current-context": "c",
            contexts: [{ name: "c", context: { cluster: "k", user: "u" } }],
            clusters: [{
              name: "k",
              cluster: {
                server: `https://127.0.0.1:${server.addr.port}`,
                "certificate-authority": "tls-ca.crt",
              },
            }],
            users: [{
              name: "u",
              user: { "client-certificate": "tls-server.crt", "client-key": "tls-server.key" },
            }],
          }),
        );
        Object.assign(Deno, {
          readTextFileSync(path: string | URL) {
            if (String(path).startsWith(dir)) reads.push(String(path).slice(dir.length + 1));
            return original(path);
          },
        });
        const conn = await connect({ kubeconfig: `${dir}/config`, serviceAccountDir: "/x" });
        try {
          for (let i = 0; i < 20; i++) {
            assert.equal((await conn.fetch("/version")).status, 200);
            // Gone from disk after the first request (mid-rewrite): nothing reads them again.
            if (i === 0) {
              for (const f of ["tls-ca.crt", "tls-server.crt", "tls-server.key"]) {
                await Deno.remove(`${dir}/${f}`);
              }
            }
          }
        } finally {
          conn.close();
        }
      });
    } finally {
      Object.assign(Deno, { readTextFileSync: original });
      await server.shutdown();
    }
    assert.deepEqual(reads.sort(), ["config", "tls-ca.crt", "tls-server.crt", "tls-server.key"]);
  },
);

Deno.test("KUBECONFIG=a:b merges as kubectl: first file wins per name, current-context from the first that sets it, paths relative to their own file", async () => {
  const { loadKubeconfig } = await import("../../lib/kubeconfig.ts");
  await inTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/a`);
    await Deno.mkdir(`${dir}/b`);
    await Deno.writeTextFile(
      `${dir}/a/config`,
      JSON.stringify({
        clusters: [{
          name: "k",
          cluster: { server: "https://a.example:6443/", "certificate-authority": "ca.crt" },
        }],
        contexts: [{ name: "c", context: { cluster: "k", user: "u", namespace: "from-a" } }],
      }),
    );
    await Deno.writeTextFile(
      `${dir}/b/config`,
      [
        "current-context: c",
        "clusters:",
        "- {name: k, cluster: {server: 'https://b.example'}}",
        "users:",
        "- {name: u, user: {tokenFile: token, client-certificate: c.crt, client-key-data: " +
        btoa("KEY") + "}}",
        "contexts:",
        "- {name: c, context: {cluster: k, user: nobody}}",
        "- {name: d, context: {cluster: k, user: u}}",
      ].join("\n"),
    );
    const kc = await loadKubeconfig(`${dir}/a/config::${dir}/missing:${dir}/b/config`);
    assert.equal(kc.context, "c");
    assert.equal(kc.namespace, "from-a");
    assert.equal(kc.cluster.server, "https://a.example:6443");
    assert.deepEqual(kc.cluster.ca, { file: `${dir}/a/ca.crt` });
    assert.equal(kc.user.tokenFile, `${dir}/b/token`);
    assert.deepEqual(kc.user.cert, { file: `${dir}/b/c.crt` });
    assert.deepEqual(kc.user.key, { data: "KEY" });
    const d = await loadKubeconfig(`${dir}/b/config:${dir}/a/config`, "d");
    assert.equal(d.cluster.server, "https://b.example");
    await assert.rejects(
      loadKubeconfig(`${dir}/a/config`, "zzz"),
      /has no context "zzz": set --context or current-context to one of \["c"\]/,
    );
  });
});

/** A TLS server (testdata CA) answering 200 to the bearer tokens in `accepted`, 401 to others. */
function authServer(): {
  port: number;
  accepted: Set<string>;
  seen: string[];
  stop: () => Promise<void>;
} {
  const seen: string[] = [];
  const accepted = new Set<string>();
  const server = tlsServer((req) => {
    const token = (req.headers.get("authorization") ?? "").replace(/^Bearer /, "");
    seen.push(token);
    return new Response(null, { status: accepted.has(token) ? 200 : 401 });
  });
  return { port: server.addr.port, accepted, seen, stop: () => server.shutdown() };
}

/** Writes `${dir}/config`: one context for a TLS test server (tests/support/tls_server.ts) on
 * `port`, as `user`. */
function writeAuthKubeconfig(dir: string, port: number, user: unknown): Promise<void> {
  return Deno.writeTextFile(
    `${dir}/config`,
    JSON.stringify({
      "current-context": "c",
      contexts: [{ name: "c", context: { cluster: "k", user: "u" } }],
      clusters: [{
        name: "k",
        cluster: {
          server: `https://127.0.0.1:${port}`,
          "certificate-authority": new URL("testdata/tls-ca.crt", import.meta.url).pathname,
        },
      }],
      users: [{ name: "u", user }],
    }),
  );
}

for (
  const [what, user] of [
    [
      "an exec plugin runs again",
      (dir: string) => ({ exec: pluginExecEntry(dir) }),
    ],
    ["a tokenFile is read again", (dir: string) => ({ tokenFile: `${dir}/token` })],
  ] as const
) {
  Deno.test(`after a 401 ${what} at once: the next request carries the new token`, T, async () => {
    const server = authServer();
    try {
      await inTempDir(async (dir) => {
        await Deno.writeTextFile(`${dir}/token`, "first");
        server.accepted.add("first");
        await writeAuthKubeconfig(dir, server.port, user(dir));
        const conn = await connect({ kubeconfig: `${dir}/config`, serviceAccountDir: "/x" });
        const status = async () => {
          const r = await conn.fetch("/version");
          await r.body?.cancel();
          return r.status;
        };
        try {
          for (let i = 0; i < 3; i++) assert.equal(await status(), 200);
          // Revoked, and a new token handed out (by the plugin, or written to the file).
          server.accepted.clear();
          server.accepted.add("second");
          await Deno.writeTextFile(`${dir}/token`, "second");
          assert.equal(await status(), 401);
          assert.equal(await status(), 200);
          const runs = await Deno.readTextFile(`${dir}/runs`).catch(() => "");
          if ("exec" in user(dir)) assert.equal(runs.trim().split("\n").length, 2, "ran twice");
        } finally {
          conn.close();
        }
      });
      assert.deepEqual(server.seen, ["first", "first", "first", "first", "second"]);
    } finally {
      await server.stop();
    }
  });
}

Deno.test(
  "a kubeconfig user with as, as-uid and one of as-groups sends kubectl's impersonation headers; two groups are refused",
  T,
  async () => {
    const seen: [string, string][][] = [];
    const server = tlsServer((req) => {
      seen.push([...req.headers].filter(([k]) => k.startsWith("impersonate-")));
      return new Response("{}");
    });
    try {
      await inTempDir(async (dir) => {
        await writeAuthKubeconfig(dir, server.addr.port, {
          token: "t",
          as: "jane",
          "as-uid": "42",
          "as-groups": ["dev"],
        });
        const conn = await connect({ kubeconfig: `${dir}/config`, serviceAccountDir: "/x" });
        try {
          await (await conn.fetch("/version")).body?.cancel();
        } finally {
          conn.close();
        }
        const text = await Deno.readTextFile(`${dir}/config`);
        await Deno.writeTextFile(`${dir}/config`, text.replace('["dev"]', '["dev","ops"]'));
        await assert.rejects(
          connect({ kubeconfig: `${dir}/config`, serviceAccountDir: "/x" }),
          /as-groups has 2 groups, and Deno's fetch can send only one Impersonate-Group header/,
        );
      });
    } finally {
      await server.shutdown();
    }
    assert.deepEqual(seen, [[
      ["impersonate-group", "dev"],
      ["impersonate-uid", "42"],
      ["impersonate-user", "jane"],
    ]]);
  },
);

Deno.test(
  "a kubeconfig the YAML parser only warns about (an unknown tag or directive beside a token) prints no part of the token",
  T,
  async () => {
    const token = "kpd" + crypto.randomUUID().replaceAll("-", "") + "Zq9";
    const root = new URL("../../", import.meta.url).pathname;
    // A child process: the parser's warnings go to the process's stderr, not to an exception.
    const script = `import { loadKubeconfig } from "./lib/kubeconfig.ts";
      await loadKubeconfig(Deno.args[0]).then(() => console.log("loaded"), (e) => console.log(e.message));`;
    for (
      const text of [
        `current-context: c\nclusters: [{name: k, cluster: {server: "https://x"}}]\n` +
        `contexts: [{name: c, context: {cluster: k, user: u}}]\n` +
        `users:\n- name: u\n  user:\n    token: !secret ${token}\n`,
        `%FOO ${token}\n---\ncurrent-context: c\n`,
      ]
    ) {
      await inTempDir(async (dir) => {
        await Deno.writeTextFile(`${dir}/config`, text);
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["eval", "--ext=ts", script, `${dir}/config`],
          cwd: root,
          stdin: "null",
        }).output();
        const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
        assert.ok(said.trim() !== "", "it said something");
        for (let i = 0; i + 4 <= token.length; i++) {
          assert.ok(!said.includes(token.slice(i, i + 4)), `token part in: ${said}`);
        }
      });
    }
  },
);

Deno.test(
  "a token that is no valid header value (a tokenFile of two lines) fails the request with a line that quotes no part of it",
  T,
  async () => {
    const secret = "kpd" + crypto.randomUUID().replaceAll("-", "") + "Zq9";
    const server = authServer();
    try {
      await inTempDir(async (dir) => {
        // A tokenFile pointed at the wrong file: a key, a kubeconfig, two tokens.
        await Deno.writeTextFile(`${dir}/token`, `first line\n${secret}\n`);
        await writeAuthKubeconfig(dir, server.port, { tokenFile: `${dir}/token` });
        const conn = await connect({ kubeconfig: `${dir}/config`, serviceAccountDir: "/x" });
        try {
          await assert.rejects(conn.fetch("/version"), (e: unknown) => {
            const message = (e as Error).message;
            assert.match(message, /Authorization.*user "u".*not a valid HTTP header value/);
            for (let i = 0; i + 4 <= secret.length; i++) {
              assert.ok(!message.includes(secret.slice(i, i + 4)), `token part in: ${message}`);
            }
            return true;
          });
        } finally {
          conn.close();
        }
      });
    } finally {
      await server.stop();
    }
    assert.deepEqual(server.seen, [], "nothing was sent");
  },
);

Deno.test(
  "in a cluster, a token file that is no valid header value fails the request with a line that quotes no part of it",
  T,
  async () => {
    const secret = "kpd" + crypto.randomUUID().replaceAll("-", "") + "Zq9";
    const root = new URL("../../", import.meta.url).pathname;
    // A child process: connecting in-cluster narrows this process's TLS root store.
    const script = `import { connect } from "./lib/kube_client.ts";
      const conn = await connect({ serviceAccountDir: Deno.args[0],
        env: (n) => ({ KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: "9" })[n] });
      await conn.fetch("/version").then(() => console.log("sent"), (e) => console.log(e.message));
      conn.close();`;
    await inTempDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/ca.crt`, CA);
      await Deno.writeTextFile(`${dir}/token`, `first line\n${secret}\n`);
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--ext=ts", script, dir],
        cwd: root,
        stdin: "null",
      }).output();
      const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.match(said, /Authorization.*not a valid HTTP header value/);
      for (let i = 0; i + 4 <= secret.length; i++) {
        assert.ok(!said.includes(secret.slice(i, i + 4)), `token part in: ${said}`);
      }
    });
  },
);

/** Open file descriptors of this process (sockets, pipes, files). */
function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/** The child processes of this process, exited ones not yet reaped included. */
function children(): string[] {
  return [...Deno.readDirSync("/proc/self/task")].flatMap((t) =>
    Deno.readTextFileSync(`/proc/self/task/${t.name}/children`).split(" ").filter((p) => p)
  );
}

Deno.test(
  "a hundred connections, each running its exec plugin (answering, failing or printing garbage), fetching, reset and closed, leave no descriptor, process or timer behind",
  async () => {
    const server = authServer();
    server.accepted.add("first");
    const rounds = 100;
    try {
      await inTempDir(async (dir) => {
        await Deno.writeTextFile(`${dir}/token`, "first");
        await writeAuthKubeconfig(dir, server.port, {
          exec: pluginExecEntry(dir),
        });
        const round = async (i: number) => {
          const mode = ["token", "fail", "token", "garbage"][i % 4];
          await Deno.writeTextFile(`${dir}/mode`, mode);
          const conn = await connect({ kubeconfig: `${dir}/config`, serviceAccountDir: "/x" });
          try {
            const r = await conn.fetch("/version").catch((e: Error) => e);
            if (mode === "token") {
              assert.equal((r as Response).status, 200);
              await (r as Response).body?.cancel();
            } else assert.match(String(r), /exec plugin/);
            if (i % 3 === 0) conn.reset();
            if (i % 5 === 0) await (await conn.fetch("/version").catch(() => undefined))?.text();
          } finally {
            conn.close();
          }
        };
        // The first rounds open what stays open for good (the runtime's own descriptors).
        for (let i = 0; i < 8; i++) await round(i);
        const before = openFds();
        for (let i = 8; i < rounds; i++) await round(i);
        // Closed clients drop their pooled connections a moment later.
        await new Promise((r) => setTimeout(r, 200));
        const after = openFds();
        assert.ok(after - before <= 4, `descriptors: ${before} before, ${after} after`);
        assert.deepEqual(children(), [], "no plugin process left, running or unreaped");
        const runs = (await Deno.readTextFile(`${dir}/runs`)).trim().split("\n").length;
        assert.ok(runs >= rounds, `the plugin ran ${runs} times`);
      });
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "a user with a client certificate and an exec plugin uses the certificate and never runs the plugin, as client-go",
  T,
  async () => {
    const server = authServer();
    const pem = (f: string) => Deno.readTextFileSync(new URL(`testdata/${f}`, import.meta.url));
    try {
      await inTempDir(async (dir) => {
        await Deno.writeTextFile(`${dir}/token`, "first");
        await writeAuthKubeconfig(dir, server.port, {
          "client-certificate-data": btoa(pem("tls-server.crt")),
          "client-key-data": btoa(pem("tls-server.key")),
          exec: pluginExecEntry(dir),
        });
        const conn = await connect({ kubeconfig: `${dir}/config`, serviceAccountDir: "/x" });
        try {
          await (await conn.fetch("/version")).body?.cancel();
        } finally {
          conn.close();
        }
        assert.equal(await Deno.readTextFile(`${dir}/runs`).catch(() => ""), "", "never ran");
      });
    } finally {
      await server.stop();
    }
    assert.deepEqual(server.seen, [""], "no bearer token sent");
  },
);

for (
  const [field, user, cluster] of [
    ["certificate-authority", { token: "t" }, { "certificate-authority": "missing.crt" }],
    ["client-key", { "client-certificate-data": "eA==", "client-key": "missing.key" }, {}],
    ["tokenFile", { tokenFile: "missing-token" }, {}],
  ] as const
) {
  Deno.test(
    `a kubeconfig whose ${field} file is missing stops the start with one line naming it, as kubectl`,
    T,
    async () => {
      await inTempDir(async (dir) => {
        await Deno.writeTextFile(
          `${dir}/config`,
          JSON.stringify({
            "current-context": "c",
            contexts: [{ name: "c", context: { cluster: "k", user: "u" } }],
            clusters: [{ name: "k", cluster: { server: "https://127.0.0.1:1", ...cluster } }],
            users: [{ name: "u", user }],
          }),
        );
        await assert.rejects(
          connect({ kubeconfig: `${dir}/config`, serviceAccountDir: "/x" }),
          (e: unknown) => {
            assert.ok(e instanceof ConfigError, String(e));
            assert.ok(e.message.includes(`${dir}/missing`), e.message);
            assert.ok(e.message.includes(field), e.message);
            assert.ok(!e.message.includes("\n"), e.message);
            return true;
          },
        );
      });
    },
  );
}
