import assert from "node:assert/strict";
import { ConfigError, helpText, loadConfig, SETTINGS } from "../../lib/config.ts";

function load(args: string[], env: Record<string, string> = {}) {
  return loadConfig(args, { env: (n) => env[n] });
}
const SEED = { KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "web" };

Deno.test("the seed's three env vars configure the service, namespace and port", () => {
  const c = load([], {
    ...SEED,
    KUBERNETES_POD_DISCOVERY_NAMESPACE: "shop",
    KUBERNETES_POD_DISCOVERY_LISTEN_PORT: "9000",
  });
  assert.deepEqual(c.services, [{ namespace: "shop", name: "web" }]);
  assert.equal(c.listenPort, 9000);
});

Deno.test("defaults: port 8080 on every interface with the data for loopback only, namespace left to the pod's own", () => {
  const c = load([], SEED);
  assert.equal(c.listenPort, 8080);
  assert.equal(c.listenAddress, undefined, "every interface: :: (dual-stack), else 0.0.0.0");
  assert.equal(c.allowRemoteData, false);
  assert.deepEqual(c.services, [{ namespace: "", name: "web" }]);
  assert.equal(c.logLevel, "info");
});

Deno.test("a flag wins over its env var, in both --flag=v and --flag v forms", () => {
  const env = { ...SEED, KUBERNETES_POD_DISCOVERY_LISTEN_PORT: "9000" };
  for (
    const args of [["--listen-port=7000", "--service-name", "api"], [
      "--listen-port",
      "7000",
      "--service-name=api",
    ]]
  ) {
    const c = load(args, env);
    assert.equal(c.listenPort, 7000, args.join(" "));
    assert.deepEqual(c.services, [{ namespace: "", name: "api" }], args.join(" "));
  }
});

Deno.test("several services, with and without a namespace, in one setting", () => {
  const c = load(["--service-name=web, other/db", "--namespace=shop"]);
  assert.deepEqual(c.services, [
    { namespace: "shop", name: "web" },
    { namespace: "other", name: "db" },
  ]);
});

for (
  const [what, args, env, pattern] of [
    [
      "port abc",
      [],
      { ...SEED, KUBERNETES_POD_DISCOVERY_LISTEN_PORT: "abc" },
      /LISTEN_PORT.*"abc" is not a port number/,
    ],
    [
      "port 70000",
      ["--listen-port=70000"],
      SEED,
      /--listen-port.*"70000" is not a port number from 1 to 65535/,
    ],
    [
      "an empty service name",
      [],
      { KUBERNETES_POD_DISCOVERY_SERVICE_NAME: " " },
      /SERVICE_NAME is empty: set it/,
    ],
    ["no service name", [], {}, /--service-name is empty/],
    ["an invalid service name", ["--service-name=Web_1"], {}, /"Web_1" is not a valid name/],
    ["an unknown flag", ["--port=1"], SEED, /Unknown argument "--port=1": see --help/],
    ["a flag without value", ["--namespace"], SEED, /--namespace needs a value/],
    [
      "a listen address that is not an IP address",
      ["--listen-address=nonsense host"],
      SEED,
      /Cannot parse --listen-address: "nonsense host" is not an IP address \(e\.g\. 127\.0\.0\.1, ::, 0\.0\.0\.0\)/,
    ],
    [
      "a listen address with a port",
      [],
      { ...SEED, KUBERNETES_POD_DISCOVERY_LISTEN_ADDRESS: "127.0.0.1:8080" },
      /KUBERNETES_POD_DISCOVERY_LISTEN_ADDRESS: "127\.0\.0\.1:8080" is not an IP address/,
    ],
    [
      "an unknown log level",
      ["--log-level=loud"],
      SEED,
      /--log-level.*"loud" is not one of debug, info, warn, error/,
    ],
  ] as const
) {
  Deno.test(`${what} is rejected with one line naming the setting`, () => {
    assert.throws(() => load([...args], { ...env }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, pattern);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  });
}

Deno.test("--help lists every setting with its env var and default", () => {
  const help = helpText();
  for (const s of Object.values(SETTINGS)) {
    assert.ok(help.includes(`--${s.flag}`), s.flag);
    for (const e of s.env) assert.ok(help.includes(e), e);
    if (s.default) assert.ok(help.includes(`(default ${s.default})`), s.flag);
  }
});

Deno.test("listen addresses: IPv4, IPv6 with or without brackets; allow-remote-data widens the policy", () => {
  assert.equal(load(["--listen-address=127.0.0.1"], SEED).listenAddress, "127.0.0.1");
  assert.equal(load(["--listen-address=::"], SEED).listenAddress, "::");
  assert.equal(load(["--listen-address=[::1]"], SEED).listenAddress, "::1");
  assert.equal(
    load(["--listen-address=fd00::1", "--allow-remote-data"], SEED).listenAddress,
    "fd00::1",
  );
  assert.equal(load(["--allow-remote-data"], SEED).allowRemoteData, true);
  const env = { ...SEED, KUBERNETES_POD_DISCOVERY_ALLOW_REMOTE_DATA: "true" };
  assert.equal(load([], env).allowRemoteData, true);
});

Deno.test("--help names the node parameter as the API takes it: ?node=prefer", () => {
  assert.ok(helpText().includes("?node=prefer"));
  assert.ok(!helpText().includes("?prefer=node"));
});

Deno.test("selector and all-services modes take namespaces; only one mode at a time", () => {
  const sel = load(["--service-selector=tier=db", "--namespaces=a, b"]);
  assert.equal(sel.serviceSelector, "tier=db");
  assert.deepEqual(sel.namespaces, ["a", "b"]);
  assert.deepEqual(sel.services, []);
  assert.equal(load(["--all-services"]).allServices, true);
  assert.throws(
    () => load(["--all-services", "--service-name=web"]),
    /Set only one of --service-name, --service-selector and --all-services/,
  );
  assert.throws(() => load(["--all-services=maybe"]), /"maybe" is not true or false/);
});

Deno.test("a non-loopback --listen-address without --allow-remote-data is refused with one line saying why", () => {
  for (const addr of ["10.1.2.3", "fd00::1"]) {
    assert.throws(
      () => load([`--listen-address=${addr}`], SEED),
      /Cannot use --listen-address=.* without --allow-remote-data: the Pod's own containers would connect from that address/,
    );
  }
  for (const addr of ["127.0.0.1", "::1", "::", "0.0.0.0"]) {
    assert.equal(load([`--listen-address=${addr}`], SEED).listenAddress, addr);
  }
});

Deno.test("the probe listener is on every interface by default; local clients and connection limits are settings", () => {
  const c = load([], SEED);
  assert.equal(c.probeAddress, undefined);
  assert.deepEqual(c.localClients, []);
  assert.deepEqual(c.limits, {
    headerTimeoutMs: 60_000,
    idleTimeoutMs: 75_000,
    maxConnections: 1000,
    maxPerClient: 200,
  });
  const w = load([
    "--local-clients=127.0.0.0/8, fd00::/64",
    "--header-timeout=5",
    "--idle-timeout=9",
    "--max-remote-connections=10",
    "--max-connections-per-client=2",
  ], SEED);
  assert.equal(w.localClients.length, 2);
  assert.deepEqual(w.limits, {
    headerTimeoutMs: 5_000,
    idleTimeoutMs: 9_000,
    maxConnections: 10,
    maxPerClient: 2,
  });
  assert.throws(
    () => load(["--local-clients=127.0.0.0/33"], SEED),
    /Cannot parse --local-clients: "127.0.0.0\/33" is not an IP address or CIDR range/,
  );
  assert.throws(() => load(["--header-timeout=0"], SEED), /--header-timeout: "0" is not a whole/);
});
