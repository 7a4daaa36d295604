/** Telling this Pod's endpoints from peers, its state, its identity settings and fallbacks. */
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../lib/config.ts";
import type { EndpointView } from "../../lib/endpoints.ts";
import { canonicalIp, knowsSelf, matchEndpoint, selfMatcher, selfState } from "../../lib/self.ts";
import { logIdentity, resolveIdentity } from "../../lib/self_identity.ts";
import type { Logger } from "../../lib/log.ts";

function endpoint(
  ip: string,
  ref?: { name: string; namespace?: string; kind?: string },
  conditions: Partial<Pick<EndpointView, "ready" | "serving" | "terminating">> = {},
): EndpointView {
  return {
    addresses: [ip],
    addressType: ip.includes(":") ? "IPv6" : "IPv4",
    ready: true,
    serving: true,
    terminating: false,
    targetRef: ref ? { kind: "Pod", ...ref } : undefined,
    ports: [],
    ...conditions,
  };
}

const ME = { name: "web-0", namespace: "shop" };

Deno.test("an endpoint whose targetRef is this Pod (name and namespace) is this Pod; another name is a peer", () => {
  const m = selfMatcher({ ...ME, ips: [] });
  assert.equal(matchEndpoint(endpoint("10.0.0.1", ME), m, "shop"), "self");
  assert.equal(matchEndpoint(endpoint("10.0.0.1", { name: "web-0" }), m, "shop"), "self");
  assert.equal(matchEndpoint(endpoint("10.0.0.2", { ...ME, name: "web-1" }), m, "shop"), "peer");
  // The same name in another namespace is another Pod.
  assert.equal(matchEndpoint(endpoint("10.0.0.3", { name: "web-0" }), m, "other"), "peer");
  // A targetRef to something other than a Pod never names this Pod.
  assert.equal(
    matchEndpoint(endpoint("10.0.0.4", { ...ME, kind: "Node" }), m, "shop"),
    "peer",
  );
});

Deno.test("without a targetRef an endpoint is this Pod by address; without name and namespace, by address only", () => {
  const both = selfMatcher({ ...ME, ips: ["10.0.0.1"] });
  assert.equal(matchEndpoint(endpoint("10.0.0.1"), both, "shop"), "self");
  assert.equal(matchEndpoint(endpoint("10.0.0.2"), both, "shop"), "peer");
  const ipsOnly = selfMatcher({ name: "web-0", ips: ["10.0.0.1"] });
  assert.equal(ipsOnly.byRef, false, "a name without a namespace cannot match a targetRef");
  assert.equal(matchEndpoint(endpoint("10.0.0.1", { name: "x" }), ipsOnly, "shop"), "self");
  assert.equal(matchEndpoint(endpoint("10.0.0.2", ME), ipsOnly, "shop"), "peer");
  const nothing = selfMatcher({ name: "web-0", ips: [] });
  assert.equal(knowsSelf(nothing), false);
  assert.equal(matchEndpoint(endpoint("10.0.0.1", ME), nothing, "shop"), "peer");
});

Deno.test("a contradiction is still this Pod, never a peer, and says which", () => {
  const m = selfMatcher({ ...ME, ips: ["10.0.0.1", "fd00::1"] });
  assert.equal(matchEndpoint(endpoint("10.0.0.9", ME), m, "shop"), "self-other-address");
  assert.equal(matchEndpoint(endpoint("fd00::9", ME), m, "shop"), "self-other-address");
  assert.equal(
    matchEndpoint(endpoint("10.0.0.1", { ...ME, name: "web-1" }), m, "shop"),
    "self-other-pod",
  );
  assert.equal(matchEndpoint(endpoint("fd00::1", ME), m, "shop"), "self");
});

Deno.test("on a dual-stack Service with only POD_IP (IPv4) set, this Pod's IPv6 endpoint is no contradiction", () => {
  const m = selfMatcher({ ...ME, ips: ["10.0.0.1"] });
  assert.equal(matchEndpoint(endpoint("10.0.0.1", ME), m, "shop"), "self");
  assert.equal(matchEndpoint(endpoint("fd00::1", ME), m, "shop"), "self");
  assert.equal(matchEndpoint(endpoint("fd00::2", { ...ME, name: "web-1" }), m, "shop"), "peer");
});

Deno.test("this Pod's state is its best endpoint's: ready, serving, not-ready, terminating; not-listed without one", () => {
  const e = (c: Partial<EndpointView>) => endpoint("10.0.0.1", ME, c);
  assert.equal(selfState([]), "not-listed");
  assert.equal(selfState([e({ ready: false, serving: false })]), "not-ready");
  assert.equal(
    selfState([e({ ready: false, serving: true, terminating: true })]),
    "serving",
  );
  assert.equal(
    selfState([e({ ready: false, serving: false, terminating: true })]),
    "terminating",
  );
  assert.equal(selfState([e({ ready: false, serving: false }), e({})]), "ready");
});

Deno.test("IPs are compared in canonical text: IPv6 lowercase and compressed", () => {
  assert.equal(canonicalIp("FD00:0:0:0::1"), "fd00::1");
  assert.equal(canonicalIp(" 10.1.2.3 "), "10.1.2.3");
  assert.equal(canonicalIp("10.1.2.300"), undefined);
  assert.equal(canonicalIp("web-0"), undefined);
  assert.equal(canonicalIp("::ffff:10.0.0.1"), "::ffff:a00:1");
});

const SEED = { KUBERNETES_POD_DISCOVERY_SERVICE_NAME: "web" };
const load = (args: string[], env: Record<string, string>) =>
  loadConfig(args, { env: (n) => env[n] });

Deno.test("the plain downward-API names configure the identity; the prefixed names and the flags win", () => {
  const plain = load([], {
    ...SEED,
    POD_NAME: "web-0",
    POD_NAMESPACE: "shop",
    POD_IPS: "10.0.0.1,FD00::1",
    POD_IP: "10.0.0.9",
  });
  assert.equal(plain.podName, "web-0");
  assert.equal(plain.podNamespace, "shop");
  assert.deepEqual(plain.podIps, ["10.0.0.1", "fd00::1"], "POD_IPS before POD_IP");
  assert.deepEqual(plain.podSources, {
    name: "POD_NAME",
    namespace: "POD_NAMESPACE",
    ips: "POD_IPS",
  });
  assert.deepEqual(load([], { ...SEED, POD_IP: "10.0.0.9" }).podIps, ["10.0.0.9"]);
  const prefixed = load(["--pod-ips=10.0.0.3"], {
    ...SEED,
    POD_NAME: "web-0",
    KUBERNETES_POD_DISCOVERY_POD_NAME: "web-1",
    POD_IPS: "10.0.0.1",
  });
  assert.equal(prefixed.podName, "web-1");
  assert.deepEqual(prefixed.podIps, ["10.0.0.3"]);
  const none = load([], SEED);
  assert.equal(none.podName, undefined);
  assert.deepEqual(none.podIps, []);
});

for (
  const [what, env, pattern] of [
    ["a Pod IP that is not an IP", { POD_IPS: "10.0.0.1,web-0" }, /POD_IPS: "web-0" is not an IP/],
    ["a Pod name with capitals", { POD_NAME: "Web-0" }, /POD_NAME: "Web-0" is not a Pod name/],
    [
      "a Pod namespace that is not a name",
      { KUBERNETES_POD_DISCOVERY_POD_NAMESPACE: "a.b" },
      /POD_NAMESPACE: "a\.b" is not a valid name/,
    ],
  ] as const
) {
  Deno.test(`${what} is rejected with one line naming the setting`, () => {
    assert.throws(() => load([], { ...SEED, ...env }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, pattern);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  });
}

function memoryLog(): Logger & { lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { lines, enabled: () => true, log: (level, msg, f) => lines.push({ level, msg, ...f }) };
}

Deno.test("without the settings the name is the hostname and the namespace the mount's, and the log says so", () => {
  const config = { ...load([], SEED), serviceAccountDir: "/sa" };
  const resolved = resolveIdentity(config, {
    hostname: () => "web-0",
    readFile: (p) => p === "/sa/namespace" ? "shop\n" : undefined,
  });
  assert.deepEqual(resolved.identity, { name: "web-0", namespace: "shop", ips: [] });
  assert.deepEqual(resolved.from, { name: "hostname", namespace: "/sa/namespace", ips: undefined });
  const log = memoryLog();
  logIdentity(log, resolved);
  assert.equal(log.lines.length, 1);
  assert.equal(log.lines[0]!.msg, "pod identity");
  assert.equal(log.lines[0]!.match, "targetRef name and namespace");
  assert.match(String(log.lines[0]!.note), /hostname.*POD_NAME/);
});

Deno.test("the settings win over the fallbacks; with nothing known the log says what to set", () => {
  const set = load([], { ...SEED, POD_NAME: "web-1", POD_NAMESPACE: "a", POD_IP: "10.0.0.1" });
  const resolved = resolveIdentity(set, { hostname: () => "web-0", readFile: () => "b" });
  assert.deepEqual(resolved.identity, { name: "web-1", namespace: "a", ips: ["10.0.0.1"] });
  assert.deepEqual(resolved.from, { name: "POD_NAME", namespace: "POD_NAMESPACE", ips: "POD_IP" });
  const bare = resolveIdentity(load([], SEED), {
    hostname: () => "My_Laptop",
    readFile: () => undefined,
  });
  assert.deepEqual(bare.identity, { name: undefined, namespace: undefined, ips: [] });
  const log = memoryLog();
  logIdentity(log, bare);
  assert.equal(log.lines[0]!.match, "none");
  assert.match(String(log.lines[0]!.note), /POD_NAME and POD_NAMESPACE/);
});

Deno.test("a Pod with setHostnameAsFQDN has its FQDN as hostname: the name is its first label", () => {
  const config = { ...load([], SEED), serviceAccountDir: "/sa" };
  const fqdn = resolveIdentity(config, {
    hostname: () => "kafka-0.kafka-headless.shop.svc.cluster.local",
    readFile: (p) => p === "/sa/namespace" ? "shop\n" : undefined,
  });
  assert.deepEqual(fqdn.identity, { name: "kafka-0", namespace: "shop", ips: [] });
  assert.equal(fqdn.from.name, "hostname");
  // A dotted name that is not this namespace's FQDN is taken as it is.
  const dotted = resolveIdentity(config, {
    hostname: () => "web.v2-0",
    readFile: (p) => p === "/sa/namespace" ? "shop\n" : undefined,
  });
  assert.equal(dotted.identity.name, "web.v2-0");
});
