/**
 * The few HTTP helpers the routes need, since `jsr:@std/http` cannot be fetched here: JSON and
 * error and plain-text responses, ETag matching for `If-None-Match`.
 *
 * @module
 */

/** The Content-Type of every JSON answer. */
export const JSON_TYPE = "application/json; charset=utf-8";

/** A JSON response with `status` and extra headers. */
export function jsonResponse(
  body: string | unknown,
  init: { status?: number; headers?: HeadersInit } = {},
): Response {
  const headers = new Headers(init.headers);
  headers.set("Content-Type", JSON_TYPE);
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return new Response(text, { status: init.status ?? 200, headers });
}

/** A JSON error `{"error": message}`. */
export function errorResponse(
  status: number,
  message: string,
  headers?: HeadersInit,
): Response {
  return jsonResponse({ error: message, status }, { status, headers });
}

/** Whether an `If-None-Match` header value matches `etag` (weak comparison, RFC 9110 13.1.2). */
export function etagMatches(ifNoneMatch: string | null, etag: string): boolean {
  if (!ifNoneMatch) return false;
  // What a client that kept our tag sends: no parsing needed.
  if (ifNoneMatch === etag) return true;
  if (ifNoneMatch.trim() === "*") return true;
  const bare = etag.replace(/^W\//, "");
  return ifNoneMatch.split(",").some((t) => t.trim().replace(/^W\//, "") === bare);
}

/** A `text/plain` answer (200). */
export function textResponse(body: string): Response {
  return new Response(body, { headers: { "Content-Type": "text/plain; charset=utf-8" } });
}
