/**
 * lib/access.ts: which clients count as the Pod's own containers, which paths any client may
 * read, and the 403 the others get.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  ALLOW_REMOTE_DATA_SETTING,
  forbidden,
  isOpenPath,
  isProbePath,
  localClients,
  parseRange,
} from "../../lib/access.ts";

Deno.test("loopback clients are local, in IPv4, IPv6 and IPv4 mapped into IPv6", () => {
  const local = localClients([]);
  for (const h of ["127.0.0.1", "::1", "[::1]", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"]) {
    assert.ok(local(h), h);
  }
  for (const h of ["127.0.0.2", "10.0.0.1", "::2", "fe80::1", "localhost", "", "1.2.3.256"]) {
    assert.ok(!local(h), h);
  }
});

Deno.test("extra ranges admit the addresses inside their prefix and no others", () => {
  const local = localClients([parseRange("10.1.0.0/16")!, parseRange("fd00::/8")!]);
  assert.ok(local("10.1.255.7"));
  assert.ok(local("::ffff:10.1.2.3"));
  assert.ok(!local("10.2.0.1"));
  assert.ok(local("fd12:3456::1"));
  assert.ok(!local("fe00::1"));
});

Deno.test("a range that is not ADDRESS or ADDRESS/PREFIX is refused", () => {
  assert.deepEqual(parseRange("10.0.0.1"), { bytes: new Uint8Array([10, 0, 0, 1]), prefix: 32 });
  assert.equal(parseRange("::/0")?.prefix, 0);
  for (
    const bad of ["", "10.0.0.1/33", "::1/129", "10.0.0.1/8/1", "10.0.0/8", "host/8", "1::2::3"]
  ) {
    assert.equal(parseRange(bad), undefined, bad);
  }
});

Deno.test("probes, the Go service's health subtree and /metrics are open; the data is not", () => {
  for (const p of ["/health", "/health/x", "/livez", "/readyz"]) assert.ok(isProbePath(p), p);
  assert.ok(isOpenPath("/metrics"));
  assert.ok(!isProbePath("/metrics"));
  for (const p of ["/endpoints/ns/web", "/v1/services", "/healthz", "/"]) {
    assert.ok(!isOpenPath(p), p);
  }
});

Deno.test("the 403 names the path, the client and the setting that opens the data", async () => {
  const resp = forbidden("/v1/services", "10.0.0.9");
  assert.equal(resp.status, 403);
  const text = await resp.text();
  assert.ok(text.includes("/v1/services"));
  assert.ok(text.includes("10.0.0.9"));
  assert.ok(text.includes(ALLOW_REMOTE_DATA_SETTING));
});
