/** The /v1 body assembled from per-endpoint fragments is the text of the object it stands for. */
import assert from "node:assert/strict";
import { MergedService } from "../../lib/merged_service.ts";
import { parseQuery } from "../../lib/query.ts";
import { serviceBody, serviceJson } from "../../lib/service_json.ts";
import { ServiceView } from "../../lib/service_view.ts";
import { type EndpointFixture, slice } from "../support/slices.ts";

/** Endpoints at `ips` over two nodes, some in zone z1, each with its Pod; the first one is
 * ready only if `ready` is. */
function spread(ips: string[], ready: boolean): EndpointFixture[] {
  return ips.map((ip, i) => ({
    ip,
    ready: ready || i > 0,
    nodeName: `node-${i % 2}`,
    zone: i % 3 ? "z1" : undefined,
    pod: `pod-${ip}`,
  }));
}

const QUERIES = ["", "state=all", "port=http", "state=serving&port=80", "zone=z1", "family=IPv6"];

Deno.test("the /v1 body is byte for byte the JSON of the view, before and after a change to one slice", () => {
  const merged = new MergedService();
  merged.set(slice(spread(["10.0.0.1", "10.0.0.2", "10.0.0.3"], true), { name: "a" }));
  merged.set(slice(spread(["10.0.1.1", "10.0.1.2"], true), { name: "b", port: 8080 }));
  const key = { namespace: "ns", name: "web" };
  const first = new ServiceView(key, { resourceVersion: "5", endpoints: merged.endpoints });
  for (const q of QUERIES) {
    const query = parseQuery(new URLSearchParams(q));
    assert.equal(serviceBody(first, query), JSON.stringify(serviceJson(first, query)), q);
  }
  // Slice a changes; b's endpoints keep their serialized text, a's are new.
  merged.set(slice(spread(["10.0.0.1", "10.0.0.2", "10.0.0.3"], false), { name: "a" }));
  const second = new ServiceView(key, { resourceVersion: "6", endpoints: merged.endpoints });
  for (const q of QUERIES) {
    const query = parseQuery(new URLSearchParams(q));
    const body = serviceBody(second, query);
    assert.equal(body, JSON.stringify(serviceJson(second, query)), q);
    assert.notEqual(body, serviceBody(first, query), `the change shows, ${q || "no query"}`);
  }
  const ready = JSON.parse(serviceBody(second, parseQuery(new URLSearchParams(""))));
  assert.deepEqual(
    ready.endpoints.map((e: { addresses: string[] }) => e.addresses[0]),
    ["10.0.0.2", "10.0.0.3", "10.0.1.1", "10.0.1.2"],
  );
});

Deno.test("with this Pod's marks the body is still byte for byte the JSON of the view, and says self", () => {
  const merged = new MergedService();
  merged.set(slice(spread(["10.0.0.1", "10.0.0.2", "10.0.0.3"], true), { name: "a" }));
  const view = new ServiceView({ namespace: "ns", name: "web" }, {
    resourceVersion: "5",
    endpoints: merged.endpoints,
  });
  const marks = { state: "ready" as const, endpoints: new Set([view.endpoints[1]!]) };
  for (const q of QUERIES) {
    const query = parseQuery(new URLSearchParams(q));
    assert.equal(
      serviceBody(view, query, marks),
      JSON.stringify(serviceJson(view, query, marks)),
      q,
    );
  }
  const body = JSON.parse(serviceBody(view, parseQuery(new URLSearchParams("state=all")), marks));
  assert.equal(body.self, "ready");
  assert.deepEqual(body.endpoints.map((e: { self?: boolean }) => e.self), [
    undefined,
    true,
    undefined,
  ]);
});
