/**
 * Conditional answers, built once for every route that serves a view (`/endpoints`,
 * `/v1/services`, `/v1/services/{namespace}/{name}`): the ETag, the change index in
 * `X-Discovery-Index`, `Cache-Control: no-cache`, how stale the view may be
 * (`X-Discovery-Last-Updated`, `X-Discovery-Age-Seconds`), and the 304 for an `If-None-Match`
 * that names the ETag.
 *
 * @module
 */
import { etagMatches } from "../http_util.ts";
import { isoTime } from "../iso_time.ts";

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

/** The headers of an answer made from one view (or the list of views): its ETag and change
 * index, no caching without revalidation, and its staleness as of `now` (ms). */
export function answerHeaders(
  tag: { etag: string; index: number | string },
  knownCurrentAt: number | undefined,
  now: number,
): Record<string, string> {
  const headers: Record<string, string> = {
    ETag: tag.etag,
    "X-Discovery-Index": String(tag.index),
    "Cache-Control": "no-cache",
  };
  return addStaleness(headers, knownCurrentAt, now);
}

/** A 304 with `headers` when the request's `If-None-Match` names their ETag; else undefined. */
export function notModified(req: Request, headers: Record<string, string>): Response | undefined {
  if (!etagMatches(req.headers.get("If-None-Match"), headers.ETag!)) return undefined;
  return new Response(null, { status: 304, headers });
}
