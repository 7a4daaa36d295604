/**
 * lib/api_error.ts: what each error answer of the API server asks of the reflector (relist, wait
 * as told, re-read the token, grant a Role), and the one line an operator reads for it.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  ApiError,
  apiError,
  explain,
  isConnectionRefused,
  isExpired,
  isForbidden,
  isStreamingListRefused,
  isTooLargeResourceVersion,
  isTooManyRequests,
  isUnauthorized,
  parseRetryAfter,
  RETRY_AFTER_MAX_MS,
} from "../../lib/api_error.ts";

function statusResponse(status: number, body: unknown, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(body), { status, headers });
}

Deno.test("a 410 Gone Status reads as expired, so the reflector relists", async () => {
  const e = await apiError(statusResponse(410, {
    kind: "Status",
    reason: "Expired",
    message: "too old resource version: 5 (10)",
  }));
  assert.ok(isExpired(e));
  assert.equal(e.message, "too old resource version: 5 (10)");
  assert.ok(!isForbidden(e) && !isUnauthorized(e) && !isTooManyRequests(e));
});

Deno.test("a body that is not JSON still gives an error naming the status and the text", async () => {
  const e = await apiError(
    new Response("upstream broke", { status: 502, statusText: "Bad Gateway" }),
  );
  assert.equal(e.status, 502);
  assert.match(e.message, /^502 Bad Gateway: upstream broke/);
});

Deno.test("a 429 asks for the wait its Retry-After header names", async () => {
  const e = await apiError(
    statusResponse(429, { reason: "TooManyRequests" }, { "retry-after": "3" }),
  );
  assert.ok(isTooManyRequests(e));
  assert.equal(e.retryAfterMs, 3000);
});

Deno.test("the Status' retryAfterSeconds is the wait when the header is absent", async () => {
  const e = await apiError(statusResponse(429, { details: { retryAfterSeconds: 2 } }));
  assert.equal(e.retryAfterMs, 2000);
});

Deno.test("Retry-After is capped, and an empty, zero, past or garbage value asks for no wait", () => {
  assert.equal(parseRetryAfter("3600"), RETRY_AFTER_MAX_MS);
  for (const v of ["", "  ", "0", "-1", "1.5", "soon", null, undefined]) {
    assert.equal(parseRetryAfter(v), undefined, String(v));
  }
  const now = Date.parse("Sat, 05 Dec 2026 16:00:00 GMT");
  assert.equal(parseRetryAfter("Sat, 05 Dec 2026 16:00:10 GMT", now), 10_000);
  assert.equal(parseRetryAfter("Sat, 05 Dec 2026 15:59:00 GMT", now), undefined);
});

Deno.test("a lagging API server's too-large resourceVersion is told apart from other timeouts", () => {
  const byCause = new ApiError(504, "Timeout", "x", { causes: ["ResourceVersionTooLarge: 9"] });
  const byMessage = new ApiError(504, "Timeout", "Too large resource version: 9, current: 5");
  const plain = new ApiError(504, "Timeout", "the request timed out");
  assert.ok(isTooLargeResourceVersion(byCause));
  assert.ok(isTooLargeResourceVersion(byMessage));
  assert.ok(!isTooLargeResourceVersion(plain));
  assert.ok(!isTooLargeResourceVersion(new Error("Too large resource version")));
});

Deno.test("a 400 or 422 to a streaming list means the server does not offer it", () => {
  assert.ok(isStreamingListRefused(new ApiError(422, "Invalid", "sendInitialEvents is forbidden")));
  assert.ok(isStreamingListRefused(new ApiError(400, "BadRequest", "x")));
  assert.ok(!isStreamingListRefused(new ApiError(500, "", "x")));
});

Deno.test("a refused or reset connection is retried quickly, a TLS error is not", () => {
  assert.ok(
    isConnectionRefused(new TypeError("error sending request: Connection refused (os error 111)")),
  );
  assert.ok(
    isConnectionRefused(
      new TypeError("error sending request for url: connection reset (os error 104)"),
    ),
  );
  assert.ok(!isConnectionRefused(new TypeError("invalid peer certificate: UnknownIssuer")));
  assert.ok(!isConnectionRefused(new ApiError(503, "", "connection refused")));
});

Deno.test("a failed fetch explains what failed (its cause), and a certificate error names the CA the API server is checked against", () => {
  const tls = new TypeError("fetch failed", {
    cause: new Error(
      "error sending request for url (https://10.96.0.1/apis/x?watch=1): client error " +
        "(Connect): invalid peer certificate: UnknownIssuer",
    ),
  });
  const line = explain(tls, "shop");
  assert.match(
    line,
    /^fetch failed: client error \(Connect\): invalid peer certificate: UnknownIssuer/,
  );
  assert.match(line, /ca\.crt/);
  assert.match(line, /certificate-authority/);
  assert.ok(!line.includes("\n"));
  const dns = new TypeError("fetch failed", {
    cause: new Error(
      "error sending request for url (https://api.example/x): dns error: no such host",
    ),
  });
  assert.equal(explain(dns, "shop"), "fetch failed: dns error: no such host");
});

Deno.test("a 403 explains the Role rule that fixes it, for the namespace and the resource", () => {
  const line = explain(new ApiError(403, "Forbidden", "denied"), "shop");
  assert.match(line, /^forbidden: denied\. /);
  assert.match(line, /namespace "shop"/);
  assert.match(
    line,
    /apiGroups: \["discovery\.k8s\.io"\], resources: \["endpointslices"\], verbs: \["get", "list", "watch"\]/,
  );
  assert.match(
    explain(new ApiError(401, "Unauthorized", "expired"), "shop"),
    /re-reading the token/,
  );
  assert.equal(explain(new Error("boom"), "shop"), "boom");
});
