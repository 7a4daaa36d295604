import assert from "node:assert/strict";
import { cleanPath, rawTarget, readTarget } from "../../lib/request_target.ts";

Deno.test("the target is cut out of req.url whatever the Host header holds, never parsed as a URL", () => {
  const cases: [string, string | null, string][] = [
    ["http://x/endpoints", "x", "/endpoints"],
    ["http://[/a", "[", "/a"],
    ["http://a b/a", "a b", "/a"],
    ["http://x:99999/a", "x:99999", "/a"],
    ["http://h/p/a", "h/p", "/a"],
    ["http://h?x/a", "h?x", "/a"],
    ["http://h#x/a", "h#x", "/a"],
    ["http://h\\x/a", "h\\x", "/a"],
    ["http://user@h/a?b=1", "user@h", "/a?b=1"],
    // Absolute form: the target's own authority, whatever the Host says.
    ["http://x/endpoints", "y", "/endpoints"],
    ["http://x:99999/endpoints", "y", "/endpoints"],
    ["HTTP://X/Y", "z", "/Y"],
    ["http://x", "y", "/"],
    ["http://x?q=1", "y", "/?q=1"],
    // No Host (HTTP/1.0): Deno writes an authority of its own.
    ["http://localhost:8080/a", null, "/a"],
    ["http://x//foo/bar", "x", "//foo/bar"],
  ];
  for (const [url, host, want] of cases) assert.equal(rawTarget(url, host), want, `${url} ${host}`);
});

Deno.test("a clean path is routed as sent, with its query apart", () => {
  assert.deepEqual(readTarget("/endpoints"), { kind: "path", path: "/endpoints", search: "" });
  assert.deepEqual(readTarget("/v1/services/ns/web?state=ready&x"), {
    kind: "path",
    path: "/v1/services/ns/web",
    search: "state=ready&x",
  });
  assert.deepEqual(readTarget("/a\\b"), { kind: "path", path: "/a\\b", search: "" }, "\\ as in Go");
  assert.deepEqual(readTarget("/endpoints/.well"), {
    kind: "path",
    path: "/endpoints/.well",
    search: "",
  });
});

Deno.test("an unclean path is redirected to the path Go's ServeMux cleans it to, with the query", () => {
  const cases: [string, string][] = [
    ["/endpoints/../health/", "/health/"],
    ["/endpoints/../x", "/x"],
    ["/endpoints/./", "/endpoints/"],
    ["/health/../endpoints/", "/endpoints/"],
    ["/endpoints/../livez", "/livez"],
    ["/endpoints/%2e%2e/livez", "/livez"],
    ["/endpoints/%2E%2E/livez?x=1", "/livez?x=1"],
    ["//endpoints", "/endpoints"],
    ["/../../livez", "/livez"],
    ["/a/..", "/"],
    ["/a/%2e%2e/b c", "/b%20c"],
    ["/x/../a%3fb", "/a%3Fb"],
  ];
  for (const [target, location] of cases) {
    assert.deepEqual(readTarget(target), { kind: "redirect", location }, target);
  }
});

Deno.test("percent-encoded characters are decoded before routing, as Go's net/http does", () => {
  assert.deepEqual(readTarget("/%65ndpoints"), { kind: "path", path: "/endpoints", search: "" });
  assert.deepEqual(readTarget("/endpoints%2flast_updated"), {
    kind: "path",
    path: "/endpoints/last_updated",
    search: "",
  });
  assert.deepEqual(readTarget("/%ff"), { kind: "path", path: "/\ufffd", search: "" });
});

Deno.test("bad percent-encoding is a 400 and an overlong path a 414, never a throw", () => {
  for (const t of ["/%zz", "/a%", "/a%2", "/%%"]) {
    const r = readTarget(t);
    assert.equal(r.kind === "bad" && r.status, 400, t);
  }
  const long = readTarget("/" + "a".repeat(5000));
  assert.equal(long.kind === "bad" && long.status, 414);
  assert.equal(
    readTarget("/endpoints?" + "q=1&".repeat(5000)).kind,
    "path",
    "a long query is read",
  );
});

Deno.test("cleanPath is Go's: rooted, no empty, . or .. segments, the trailing slash kept", () => {
  const cases: [string, string][] = [
    ["", "/"],
    ["/", "/"],
    ["a", "/a"],
    ["/a//b/", "/a/b/"],
    ["/a/./b", "/a/b"],
    ["/a/../../b/", "/b/"],
    ["/..", "/"],
    ["/a/b/..", "/a"],
  ];
  for (const [p, want] of cases) assert.equal(cleanPath(p), want, p);
});
