import assert from "node:assert/strict";
import type { EndpointView } from "../../lib/endpoints.ts";
import { etagMatches } from "../../lib/http_util.ts";
import { Metrics } from "../../lib/metrics.ts";
import {
  filterEndpoints,
  parseDuration,
  parseQuery,
  QueryError,
  targets,
} from "../../lib/query.ts";
import { sseEvent } from "../../lib/sse_frame.ts";

function ep(
  ip: string,
  o: Partial<EndpointView> = {},
): EndpointView {
  return {
    addresses: [ip],
    addressType: ip.includes(":") ? "IPv6" : "IPv4",
    ready: true,
    serving: true,
    terminating: false,
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    ...o,
  };
}

const q = (s: string, self = {}) => parseQuery(new URLSearchParams(s), self);

Deno.test("the default query is ready endpoints as JSON", () => {
  assert.deepEqual(q(""), {
    state: "ready",
    fallback: false,
    family: undefined,
    format: "json",
    zonal: undefined,
    nodeMode: undefined,
  });
});

Deno.test("unknown parameters and values are rejected naming the parameter", () => {
  for (
    const [s, re] of [
      ["colour=red", /Unknown parameter \?colour/],
      ["state=up", /Bad \?state=up: use one of ready, serving, all/],
      ["family=v4", /Bad \?family=v4/],
      ["index=x", /Bad \?index=x/],
      ["index=1&wait=soon", /Bad \?wait=soon: use a duration/],
      ["index=1&wait=11m", /at most 10m/],
      ["wait=1s", /\?wait needs \?index/],
      ["zonal=pin", /\?zonal needs a zone/],
      ["node=prefer", /\?node needs a node/],
    ] as const
  ) {
    assert.throws(() => q(s), (e: unknown) => e instanceof QueryError && re.test(e.message), s);
  }
});

Deno.test("the sidecar's own zone and node fill in ?zonal and ?node", () => {
  const parsed = q("zonal=prefer&node=pin", { zone: "z1", nodeName: "n1" });
  assert.equal(parsed.zone, "z1");
  assert.equal(parsed.node, "n1");
});

Deno.test("durations read as Go and Consul write them", () => {
  assert.equal(parseDuration("30s"), 30_000);
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("2m"), 120_000);
  assert.equal(parseDuration("5"), 5_000);
  assert.equal(parseDuration("-1s"), undefined);
});

Deno.test("state filters ready, serving and all; fallback serves terminating when none is ready", () => {
  const eps = [
    ep("10.0.0.1"),
    ep("10.0.0.2", { ready: false, serving: true, terminating: true }),
    ep("10.0.0.3", { ready: false, serving: false }),
  ];
  const ips = (s: string, list = eps) => filterEndpoints(list, q(s)).map((e) => e.addresses[0]);
  assert.deepEqual(ips(""), ["10.0.0.1"]);
  assert.deepEqual(ips("state=serving"), ["10.0.0.1", "10.0.0.2"]);
  assert.deepEqual(ips("state=all"), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
  const noneReady = eps.slice(1);
  assert.deepEqual(ips("", noneReady), []);
  assert.deepEqual(ips("fallback=serving", noneReady), ["10.0.0.2"]);
});

Deno.test("zone pin keeps only the zone; prefer falls back to all when the zone has none", () => {
  const eps = [ep("10.0.0.1", { zone: "a" }), ep("10.0.0.2", { zone: "b" })];
  const ips = (s: string) => filterEndpoints(eps, q(s)).map((e) => e.addresses[0]);
  assert.deepEqual(ips("zone=a"), ["10.0.0.1"]);
  assert.deepEqual(ips("zone=c&zonal=pin"), []);
  assert.deepEqual(ips("zone=c&zonal=prefer"), ["10.0.0.1", "10.0.0.2"]);
});

Deno.test("targets are ip:port, IPv6 in brackets, and need a port when there are several", () => {
  const two = ep("10.0.0.9", {
    ports: [{ name: "http", port: 80, protocol: "TCP" }, {
      name: "m",
      port: 9090,
      protocol: "TCP",
    }],
  });
  assert.deepEqual(targets([ep("10.0.0.1"), ep("fd00::1")], undefined), [
    "10.0.0.1:8080",
    "[fd00::1]:8080",
  ]);
  assert.deepEqual(targets([two], undefined), []);
  assert.deepEqual(targets([two], "m"), ["10.0.0.9:9090"]);
  assert.deepEqual(targets([two], "80"), ["10.0.0.9:80"]);
});

Deno.test("SSE events are framed with event, id and one data line per line", () => {
  assert.equal(
    sseEvent({ event: "update", id: 7, data: "a\nb" }),
    "event: update\nid: 7\ndata: a\ndata: b\n\n",
  );
});

Deno.test("If-None-Match matches strong, weak, listed and * ETags", () => {
  assert.ok(etagMatches('"x"', '"x"'));
  assert.ok(etagMatches('W/"x"', '"x"'));
  assert.ok(etagMatches('"y", "x"', '"x"'));
  assert.ok(etagMatches("*", '"x"'));
  assert.ok(!etagMatches('"y"', '"x"'));
  assert.ok(!etagMatches(null, '"x"'));
});

Deno.test("metrics render in the Prometheus text format with escaped labels", () => {
  const m = new Metrics();
  m.counter("kpd_x_total", "x");
  m.inc("kpd_x_total", { route: 'a"b' }, 2);
  m.gauge("kpd_g", "g", () => [[{}, 1.5]]);
  m.observe("kpd_h_seconds", { route: "/r" }, 0.002);
  const text = m.render();
  assert.match(text, /# TYPE kpd_x_total counter\nkpd_x_total\{route="a\\"b"\} 2/);
  assert.match(text, /kpd_g 1.5/);
  assert.match(text, /kpd_h_seconds_bucket\{route="\/r",le="0.001"\} 0/);
  assert.match(text, /kpd_h_seconds_bucket\{route="\/r",le="0.0025"\} 1/);
  assert.match(text, /kpd_h_seconds_count\{route="\/r"\} 1/);
});
