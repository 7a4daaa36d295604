/** lib/exec_credential.ts with the test's own plugin (tests/support/exec_plugin.sh) and a driven clock. */
import assert from "node:assert/strict";
import { ExecCredentials, ExecPluginError, MIN_RERUN_MS } from "../../lib/exec_credential.ts";
import type { ExecConfig } from "../../lib/exec_config.ts";

const PLUGIN = new URL("../support/exec_plugin.sh", import.meta.url).pathname;
const V1 = "client.authentication.k8s.io/v1";

async function withPlugin(
  fn: (dir: string, config: ExecConfig) => Promise<void>,
  extra: Partial<ExecConfig> = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kpd-exec-" });
  try {
    await Deno.writeTextFile(`${dir}/token`, "first");
    await fn(dir, {
      where: 'config users["u"].user.exec',
      command: PLUGIN,
      args: [V1],
      env: { KPD_PLUGIN_DIR: dir },
      apiVersion: V1,
      provideClusterInfo: false,
      interactiveMode: "Never",
      ...extra,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function credentials(config: ExecConfig, clock: { t: number }): ExecCredentials {
  return new ExecCredentials(config, {
    user: "u",
    kubeconfig: "/home/me/.kube/config",
    cluster: () => ({ server: "https://127.0.0.1:6443" }),
    now: () => clock.t,
  });
}

Deno.test("a credential without expirationTimestamp is kept until a 401, then the plugin runs again", async () => {
  await withPlugin(async (dir, config) => {
    const clock = { t: 1_000_000 };
    const c = credentials(config, clock);
    const [a, b] = await Promise.all([c.get(), c.get()]);
    assert.equal(a.token, "first");
    assert.equal(b.token, "first");
    assert.equal(c.runs, 1, "concurrent callers share one run");
    await Deno.writeTextFile(`${dir}/token`, "second");
    clock.t += 24 * 3600_000;
    assert.equal((await c.get()).token, "first", "kept a day later");
    c.unauthorized();
    assert.equal((await c.get()).token, "second");
    assert.equal(c.runs, 2);
    c.unauthorized();
    await c.get();
    assert.equal(c.runs, 2, `a 401 within ${MIN_RERUN_MS} ms of a run does not run it again`);
  });
});

Deno.test("a credential is kept until its expirationTimestamp, then the plugin runs again", async () => {
  await withPlugin(async (dir, config) => {
    const expires = Date.parse("2026-12-05T10:00:00Z");
    await Deno.writeTextFile(`${dir}/expires`, "2026-12-05T10:00:00Z");
    const clock = { t: expires - 60_000 };
    const c = credentials(config, clock);
    assert.deepEqual(await c.get(), {
      token: "first",
      cert: undefined,
      key: undefined,
      expiresAt: expires,
    });
    clock.t = expires - 1;
    await c.get();
    assert.equal(c.runs, 1);
    clock.t = expires;
    await c.get();
    assert.equal(c.runs, 2);
  });
});

for (
  const [what, setup, pattern] of [
    ["garbage", "garbage", /printed no ExecCredential \(its output is not JSON\)$/],
    ["a failure", "fail", /exited with code 3: exec_plugin: not logged in; run exec_plugin login$/],
  ] as const
) {
  Deno.test(`a plugin that prints ${what} is one line naming plugin, user and kubeconfig, never its stdout`, async () => {
    await withPlugin(async (dir, config) => {
      await Deno.writeTextFile(`${dir}/mode`, setup);
      const c = credentials(config, { t: 0 });
      await assert.rejects(c.get(), (e: unknown) => {
        assert.ok(e instanceof ExecPluginError);
        assert.match(
          e.message,
          /^Cannot get credentials from exec plugin ".*exec_plugin\.sh" of user "u" in kubeconfig \/home\/me\/\.kube\/config: /,
        );
        assert.match(e.message, pattern);
        assert.ok(!e.message.includes("this is not an ExecCredential"));
        return true;
      });
    });
  });
}

Deno.test("a plugin answering with another apiVersion, or neither token nor certificate, is refused without quoting it", async () => {
  await withPlugin(async (_dir, config) => {
    const c = credentials({ ...config, args: ["client.authentication.k8s.io/v1beta1"] }, { t: 0 });
    await assert.rejects(
      c.get(),
      /answered with another apiVersion than the kubeconfig's client\.authentication\.k8s\.io\/v1/,
    );
  });
  await withPlugin(async (dir, config) => {
    await Deno.writeTextFile(`${dir}/token`, "");
    await assert.rejects(credentials(config, { t: 0 }).get(), /neither a token nor a certificate/);
  });
});

Deno.test("provideClusterInfo sends the cluster, and the request says it is not interactive", async () => {
  await withPlugin(async (dir, config) => {
    const c = new ExecCredentials({ ...config, provideClusterInfo: true }, {
      user: "u",
      kubeconfig: "k",
      cluster: () => ({
        server: "https://h:1",
        ca: "PEM",
        proxyUrl: "http://p:3128",
        config: { a: 1 },
      }),
    });
    await c.get();
    const info = JSON.parse((await Deno.readTextFile(`${dir}/runs`)).trim());
    assert.deepEqual(info, {
      kind: "ExecCredential",
      apiVersion: V1,
      spec: {
        interactive: false,
        cluster: {
          server: "https://h:1",
          "certificate-authority-data": btoa("PEM"),
          "proxy-url": "http://p:3128",
          config: { a: 1 },
        },
      },
    });
  });
});

Deno.test("a missing plugin is one line with its installHint on one line", async () => {
  await withPlugin(async (_dir, config) => {
    const c = credentials({
      ...config,
      command: "kpd-no-such-plugin",
      installHint: "Install it:\n  brew install kpd",
    }, { t: 0 });
    await assert.rejects(c.get(), (e: unknown) => {
      assert.equal(
        (e as Error).message,
        'Cannot get credentials from exec plugin "kpd-no-such-plugin" of user "u" in kubeconfig /home/me/.kube/config: not found; Install it: brew install kpd',
      );
      return true;
    });
  });
});

/** `fn`'s outcome, or "still waiting" after `ms`. */
async function within<R>(ms: number, fn: () => Promise<R>): Promise<R | string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((r) => timer = setTimeout(() => r(`still waiting`), ms));
  try {
    return await Promise.race([fn(), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The message of `p`'s rejection, or "resolved". */
function failure(p: Promise<unknown>): Promise<string> {
  return p.then(() => "resolved", (e) => (e as Error).message);
}

for (
  const [what, script] of [
    ["ignores SIGTERM", "trap '' TERM; sleep 10"],
    ["waits on a child that holds its output", "sleep 10; echo never"],
  ] as const
) {
  Deno.test(`a plugin that ${what} is killed at the timeout: one line, and the sidecar is not held`, async () => {
    await withPlugin(async (_dir, config) => {
      const c = new ExecCredentials({ ...config, command: "sh", args: ["-c", script] }, {
        user: "u",
        kubeconfig: "k",
        cluster: () => ({ server: "https://h:1" }),
        timeoutMs: 300,
      });
      const said = await within(5_000, () => failure(c.get()));
      assert.match(
        said,
        /exec plugin "sh" of user "u" in kubeconfig k: gave no answer within 0\.3 s/,
      );
    });
  });
}

Deno.test("a plugin that answers and leaves a process holding its output is not waited for", async () => {
  await withPlugin(async (dir, config) => {
    const answer = JSON.stringify({
      apiVersion: V1,
      kind: "ExecCredential",
      status: { token: "t" },
    });
    const script = `echo '${answer}'; sleep 30 & echo $! > ${dir}/left; exit 0`;
    const c = credentials({ ...config, command: "sh", args: ["-c", script] }, { t: 0 });
    try {
      const got = await within(5_000, () => c.get().then((x) => x.token));
      assert.equal(got, "t");
    } finally {
      Deno.kill(Number(await Deno.readTextFile(`${dir}/left`)), "SIGKILL");
    }
  });
});

Deno.test("a plugin that prints without end is killed once it printed 1 MiB: one line, nothing more held", async () => {
  await withPlugin(async (_dir, config) => {
    const script = "head -c 50000000 /dev/zero";
    const c = credentials({ ...config, command: "sh", args: ["-c", script] }, { t: 0 });
    assert.match(await failure(c.get()), /printed more than 1048576 bytes and was killed$/);
  });
});

Deno.test("closing the credentials kills a plugin still running: the stopping sidecar leaves none behind", async () => {
  await withPlugin(async (dir, config) => {
    const script = `echo $$ > ${dir}/pid; exec sleep 10`;
    const c = credentials({ ...config, command: "sh", args: ["-c", script] }, { t: 0 });
    const got = failure(c.get());
    await new Promise((r) => setTimeout(r, 300));
    c.close();
    assert.match(String(await within(3_000, () => got)), /killed by SIGTERM/);
    const pid = Number(await Deno.readTextFile(`${dir}/pid`));
    assert.throws(() => Deno.kill(pid, 0), "the plugin is gone");
  });
});
