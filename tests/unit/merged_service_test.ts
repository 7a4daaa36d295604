/** The per-slice merge against the full merge: seeded random slice changes, and what it keeps. */
import assert from "node:assert/strict";
import type { V1Endpoint, V1EndpointSlice } from "@kubernetes/client-node";
import { mergeSlices } from "../../lib/endpoints.ts";
import { MergedService } from "../../lib/merged_service.ts";
import { prng } from "../support/history/schedule.ts";

function randomSlice(rand: () => number, name: string): V1EndpointSlice {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const maybe = (p: number) => rand() < p;
  const addressType = pick(["IPv4", "IPv4", "IPv4", "IPv6", "FQDN"]);
  const ports = pick([
    [{ name: "http", port: 80, protocol: "TCP" }],
    [{ name: "http", port: 80, protocol: "TCP" }, { name: "grpc", port: 9090 }],
    [{ name: "http", port: 8080, protocol: "TCP" }],
    [{ name: "all" }],
    [],
  ]);
  const endpoints: V1Endpoint[] = [];
  const n = Math.floor(rand() * 8);
  for (let i = 0; i < n; i++) {
    const ip = addressType === "IPv6"
      ? `fd00::${Math.floor(rand() * 12)}`
      : `10.0.0.${Math.floor(rand() * 12)}`;
    const e: V1Endpoint = { addresses: maybe(0.05) ? [] : maybe(0.1) ? [ip, `${ip}9`] : [ip] };
    if (maybe(0.8)) {
      e.conditions = {};
      if (maybe(0.8)) e.conditions.ready = maybe(0.6);
      if (maybe(0.6)) e.conditions.serving = maybe(0.7);
      if (maybe(0.4)) e.conditions.terminating = maybe(0.5);
    }
    if (maybe(0.5)) e.nodeName = pick(["node-a", "node-b"]);
    if (maybe(0.3)) e.zone = pick(["z1", "z2"]);
    if (maybe(0.2)) e.hostname = `h${Math.floor(rand() * 3)}`;
    if (maybe(0.5)) e.targetRef = { kind: "Pod", name: `pod-${Math.floor(rand() * 3)}` };
    if (maybe(0.1)) e.hints = { forZones: [{ name: pick(["z1", "z2"]) }] };
    endpoints.push(e);
  }
  return { addressType, metadata: { name }, ports, endpoints } as V1EndpointSlice;
}

Deno.test("the per-slice merge equals the full merge after every change of a seeded random sequence", () => {
  const seed = Number(Deno.env.get("MERGE_SEED")) || Math.floor(Math.random() * 2 ** 31);
  console.log(`seed ${seed} (replay with MERGE_SEED=${seed})`);
  const rand = prng(seed);
  for (let run = 0; run < 200; run++) {
    const merged = new MergedService();
    const slices = new Map<string, V1EndpointSlice>();
    for (let step = 0; step < 60; step++) {
      const name = `svc-${"abcdef"[Math.floor(rand() * 6)]}`;
      const before = JSON.stringify(mergeSlices(slices.values()));
      let changed: boolean;
      if (rand() < 0.25) {
        slices.delete(name);
        changed = merged.delete(name);
      } else {
        const s = randomSlice(rand, name);
        slices.set(name, s);
        changed = merged.set(s);
      }
      const full = mergeSlices(slices.values());
      const where = `seed ${seed}, run ${run}, step ${step}`;
      assert.deepEqual(merged.endpoints, full, where);
      assert.equal(changed, JSON.stringify(full) !== before, `change reported, ${where}`);
      assert.equal(merged.size, slices.size, where);
    }
  }
});

function podSlice(name: string, first: number, ready: (i: number) => boolean): V1EndpointSlice {
  const endpoints: V1Endpoint[] = [];
  for (let i = first; i < first + 100; i++) {
    endpoints.push({
      addresses: [`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`],
      conditions: { ready: ready(i) },
      targetRef: { kind: "Pod", name: `web-${i}`, namespace: "ns" },
    });
  }
  return {
    addressType: "IPv4",
    metadata: { name },
    ports: [{ name: "http", port: 80, protocol: "TCP" }],
    endpoints,
  } as V1EndpointSlice;
}

Deno.test("a change to one slice of fifty leaves the other slices' endpoints as they were", () => {
  const merged = new MergedService();
  for (let s = 0; s < 50; s++) merged.set(podSlice(`web-${s}`, s * 100, () => true));
  const before = merged.endpoints;
  assert.equal(before.length, 5000);
  assert.equal(merged.set(podSlice("web-7", 700, (i) => i !== 742)), true);
  const after = merged.endpoints;
  assert.notEqual(after, before, "a change makes a new list");
  assert.equal(after.length, 5000);
  const ofWeb7 = (e: { targetRef?: { name?: string } }) =>
    /^web-7\d\d$/.test(e.targetRef?.name ?? "");
  const replaced = after.filter((e, i) => e !== before[i]);
  assert.equal(replaced.filter((e) => !ofWeb7(e)).length, 0, "other slices' endpoints kept");
  assert.deepEqual(
    after.filter((e) => !e.ready).map((e) => e.targetRef?.name),
    ["web-742"],
  );
  assert.deepEqual(
    after,
    mergeSlices([...Array(50).keys()].map((s) => podSlice(`web-${s}`, s * 100, (i) => i !== 742))),
  );
});

Deno.test("a slice sent again unchanged reports no change and keeps the same list", () => {
  const merged = new MergedService();
  merged.set(podSlice("web-0", 0, () => true));
  const before = merged.endpoints;
  assert.equal(merged.set(podSlice("web-0", 0, () => true)), false);
  assert.equal(merged.endpoints, before);
  assert.equal(merged.delete("web-9"), false, "deleting a slice it never had changes nothing");
  assert.equal(merged.delete("web-0"), true);
  assert.deepEqual(merged.endpoints, []);
});
