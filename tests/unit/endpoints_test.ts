import assert from "node:assert/strict";
import { mergeSlices, renderV1Endpoints } from "../../lib/endpoints.ts";
import { slice } from "../support/slices.ts";

Deno.test("an endpoint listed in two slices during a move appears once, with its ready state", () => {
  const merged = mergeSlices([
    slice([{ ip: "10.0.0.1", ready: false }, { ip: "10.0.0.2" }], { name: "web-a" }),
    slice([{ ip: "10.0.0.1", ready: true }], { name: "web-b" }),
  ]);
  assert.deepEqual(merged.map((e) => [e.addresses[0], e.ready]), [
    ["10.0.0.1", true],
    ["10.0.0.2", true],
  ]);
});

Deno.test("ports are resolved per slice, so one address may serve two port sets", () => {
  const merged = mergeSlices([
    slice([{ ip: "10.0.0.1" }], { name: "a", port: 8080 }),
    slice([{ ip: "10.0.0.1" }], { name: "b", port: 9090, portName: "metrics" }),
  ]);
  assert.equal(merged.length, 2);
  assert.deepEqual(merged.map((e) => e.ports[0]!.port).sort(), [8080, 9090]);
});

Deno.test("a nil ready condition means ready, and a nil serving means serving, as the API and kube-proxy read them", () => {
  const [e] = mergeSlices([slice([{ ip: "10.0.0.1" }], { name: "a" })]);
  assert.equal(e!.ready, true);
  assert.equal(e!.serving, true);
  assert.equal(e!.terminating, false);
  const [notReady] = mergeSlices([slice([{ ip: "10.0.0.1", ready: false }], { name: "a" })]);
  assert.equal(notReady!.ready, false);
  assert.equal(notReady!.serving, true, "serving absent is true, whatever ready says");
});

Deno.test("merging is independent of slice order", () => {
  const a = slice([{ ip: "10.0.0.3" }, { ip: "10.0.0.1" }], { name: "a" });
  const b = slice([{ ip: "10.0.0.2", ready: false }], { name: "b" });
  assert.deepEqual(mergeSlices([a, b]), mergeSlices([b, a]));
});

Deno.test("FQDN slices and endpoints without addresses are left out", () => {
  const merged = mergeSlices([
    slice([{ ip: "example.com" }], { name: "f", addressType: "FQDN" }),
    { ...slice([], { name: "e" }), endpoints: [{ addresses: [] }] },
  ]);
  assert.deepEqual(merged, []);
});

Deno.test("the v1 shape puts ready endpoints in addresses, not-ready ones in notReadyAddresses and leaves terminating ones out, as the Endpoints controller did", () => {
  const merged = mergeSlices([
    slice([
      { ip: "10.0.0.1", nodeName: "node-a" },
      { ip: "10.0.0.2", ready: false, nodeName: "node-a" },
      { ip: "10.0.0.3", ready: false, serving: true, terminating: true, nodeName: "node-a" },
    ], { name: "a", port: 8080 }),
  ]);
  const v1 = renderV1Endpoints({ name: "web", namespace: "ns", resourceVersion: "7" }, merged);
  assert.equal(v1.kind, "Endpoints");
  assert.deepEqual(v1.metadata, { name: "web", namespace: "ns", resourceVersion: "7" });
  assert.equal(v1.subsets!.length, 1);
  const [s] = v1.subsets!;
  assert.deepEqual(s!.addresses!.map((a) => a.ip), ["10.0.0.1"]);
  assert.deepEqual(s!.notReadyAddresses!.map((a) => a.ip), ["10.0.0.2"]);
  assert.deepEqual(s!.ports, [{ name: "http", port: 8080, protocol: "TCP" }]);
  assert.equal(s!.addresses![0]!.nodeName, "node-a");
});

Deno.test("a terminating endpoint still ready (publishNotReadyAddresses) stays in addresses", () => {
  const merged = mergeSlices([
    slice([{ ip: "10.0.0.4", ready: true, serving: true, terminating: true }], { name: "a" }),
  ]);
  const v1 = renderV1Endpoints({ name: "web", namespace: "ns", resourceVersion: "7" }, merged);
  assert.deepEqual(v1.subsets![0]!.addresses!.map((a) => a.ip), ["10.0.0.4"]);
  assert.equal(v1.subsets![0]!.notReadyAddresses, undefined);
});

Deno.test("the v1 shape groups endpoints into one subset per port set", () => {
  const merged = mergeSlices([
    slice([{ ip: "10.0.0.1" }], { name: "a", port: 8080 }),
    slice([{ ip: "10.0.0.2" }], { name: "b", port: 9090 }),
  ]);
  const v1 = renderV1Endpoints({ name: "web", namespace: "ns", resourceVersion: "1" }, merged);
  assert.deepEqual(v1.subsets!.map((s) => s.ports![0]!.port).sort(), [8080, 9090]);
});

Deno.test("the v1 shape shows IPv4 for a dual-stack Service, as the Endpoints controller did", () => {
  const merged = mergeSlices([
    slice([{ ip: "10.0.0.1" }], { name: "v4" }),
    slice([{ ip: "fd00::1" }], { name: "v6", addressType: "IPv6" }),
  ]);
  const v1 = renderV1Endpoints({ name: "web", namespace: "ns", resourceVersion: "1" }, merged);
  assert.deepEqual(v1.subsets![0]!.addresses!.map((a) => a.ip), ["10.0.0.1"]);
  const v6only = renderV1Endpoints(
    { name: "web", namespace: "ns", resourceVersion: "1" },
    merged.filter((e) => e.addressType === "IPv6"),
  );
  assert.deepEqual(v6only.subsets![0]!.addresses!.map((a) => a.ip), ["fd00::1"]);
});

Deno.test("a Service with no endpoints renders subsets as null, as the Go service did", () => {
  const v1 = renderV1Endpoints({ name: "web", namespace: "ns", resourceVersion: "1" }, []);
  assert.equal(v1.subsets, null);
  assert.match(JSON.stringify(v1), /"subsets":null}$/);
});
