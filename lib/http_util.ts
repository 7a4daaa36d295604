/**
 * The few HTTP helpers the routes need, since `jsr:@std/http` cannot be fetched here: JSON and
 * error responses, ETag matching for `If-None-Match`.
 *
 * @module
 */
import { isoTime } from "./iso_time.ts";

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

/** The last moment turned into text, and that text: requests in the same millisecond (most of
 * them, under load) share it. */
let isoAt = NaN;
let isoText = "";

/**
 * Adds the staleness headers of a view known current at `at` (ms; nothing before the first
 * complete list): `X-Discovery-Last-Updated` and `X-Discovery-Age-Seconds` at `now`.
 */
export function addStaleness(
  headers: Record<string, string>,
  at: number | undefined,
  now: number,
): Record<string, string> {
  if (at === undefined || !Number.isFinite(at) || at <= 0) return headers;
  if (at !== isoAt) [isoAt, isoText] = [at, isoTime(at)];
  headers["X-Discovery-Last-Updated"] = isoText;
  headers["X-Discovery-Age-Seconds"] = String(Math.max(0, Math.floor((now - at) / 1000)));
  return headers;
}
