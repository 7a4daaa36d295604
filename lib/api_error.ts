/**
 * The API server's error answers, as the reflector classifies them: an {@linkcode ApiError}
 * built from a non-2xx response or a watch ERROR event, and small named predicates saying what
 * each class of error asks of a client (relist, relist from the newest state, re-read the token,
 * wait as told, grant a Role), after client-go's `tools/cache/reflector.go` and
 * `apimachinery/pkg/api/errors`.
 *
 * @module
 */
import type { V1Status } from "@kubernetes/client-node";

/** The longest `Retry-After` honoured (ms); a longer one is a server asking for too much. */
export const RETRY_AFTER_MAX_MS = 60_000;

/** An error answer of the API server. */
export class ApiError extends Error {
  /** HTTP status (or the code of an ERROR event's Status). */
  readonly status: number;
  /** The Status reason, e.g. "Expired", "Forbidden". */
  readonly reason: string;
  /** The Status detail causes' types, e.g. "ResourceVersionTooLarge". */
  readonly causes: string[];
  /** How long the server asked us to wait (ms): `Retry-After` or `details.retryAfterSeconds`. */
  readonly retryAfterMs?: number;
  /** Makes the error from the status code and the Status fields. */
  constructor(
    status: number,
    reason: string,
    message: string,
    options: { causes?: string[]; retryAfterMs?: number } = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.reason = reason;
    this.causes = options.causes ?? [];
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The {@linkcode ApiError} of a Status object (an error body or an ERROR event's object). */
export function statusError(
  s: V1Status,
  httpStatus?: number,
  retryAfter?: string | null,
): ApiError {
  const fromStatus = s.details?.retryAfterSeconds;
  return new ApiError(httpStatus ?? s.code ?? 500, s.reason ?? "", s.message ?? "API error", {
    causes: (s.details?.causes ?? []).map((c) => `${c.reason ?? ""}: ${c.message ?? ""}`),
    retryAfterMs: parseRetryAfter(retryAfter) ??
      parseRetryAfter(fromStatus === undefined ? undefined : String(fromStatus)),
  });
}

/**
 * The wait a `Retry-After` value asks for (ms, at most {@linkcode RETRY_AFTER_MAX_MS}): delay
 * seconds or an HTTP date (RFC 9110 §10.2.3). Undefined for no wait: absent, empty, zero, a past
 * date or garbage, which the backoff then covers (an empty header read as 0 ms was a tight loop).
 * `now` is the wall clock, what an HTTP date is on.
 */
export function parseRetryAfter(value?: string | null, now = Date.now()): number | undefined {
  const v = value?.trim();
  if (!v) return undefined;
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else if (/[a-z]/i.test(v) && Number.isFinite(Date.parse(v))) ms = Date.parse(v) - now;
  else return undefined;
  return ms > 0 ? Math.min(ms, RETRY_AFTER_MAX_MS) : undefined;
}

/** Reads a non-2xx response into an {@linkcode ApiError}. */
export async function apiError(resp: Response): Promise<ApiError> {
  const text = await resp.text();
  const retryAfter = resp.headers.get("retry-after");
  try {
    return statusError(JSON.parse(text) as V1Status, resp.status, retryAfter);
  } catch {
    return statusError(
      { message: `${resp.status} ${resp.statusText}: ${text.slice(0, 200)}` },
      resp.status,
      retryAfter,
    );
  }
}

/** 410 Gone / Expired: the resourceVersion is older than the server keeps; relist
 * (client-go `isExpiredError`). */
export function isExpired(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 410 || e.reason === "Expired");
}

/** The resourceVersion asked for is newer than this API server has seen (a lagging server);
 * relist from the newest state (client-go `isTooLargeResourceVersionError`). */
export function isTooLargeResourceVersion(e: unknown): boolean {
  if (!(e instanceof ApiError)) return false;
  if (e.causes.some((c) => c.startsWith("ResourceVersionTooLarge"))) return true;
  return (e.status === 504 || e.reason === "Timeout") &&
    (/Too large resource version/i.test(e.message) ||
      e.causes.some((c) => /Too large resource version/i.test(c)));
}

/** 401: the token expired or was rotated; re-read credentials before the next try. */
export function isUnauthorized(e: unknown): boolean {
  return e instanceof ApiError && e.status === 401;
}

/** 403: RBAC denies us; retrying helps only once someone grants the Role (or RBAC loads). */
export function isForbidden(e: unknown): boolean {
  return e instanceof ApiError && e.status === 403;
}

/** 429: the server's priority and fairness asks us to come back later. */
export function isTooManyRequests(e: unknown): boolean {
  return e instanceof ApiError && e.status === 429;
}

/** The 400 or 422 an API server gives a streaming list it does not offer ("sendInitialEvents is
 * forbidden for watch unless the WatchList feature gate is enabled"). */
export function isStreamingListRefused(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 400 || e.status === 422);
}

/** Nothing answers at the server's address: the connection is refused, or something in front
 * of the server (a load balancer, a proxy) accepts it and closes or resets it before any
 * answer. That costs the API server nothing, so it is retried quickly (client-go's
 * `isWatchErrorRetriable` names connection refused). A TLS error (a wrong CA or server) is not
 * this: it is backed off like any other failure. */
export function isConnectionRefused(e: unknown): boolean {
  if (e instanceof ApiError) return false;
  const text = `${(e as Error)?.message ?? e} ${(e as Error)?.cause ?? ""}`;
  if (/connection refused|os error 111|ECONNREFUSED/i.test(text)) return true;
  return /error sending request/i.test(text) &&
    /tls handshake eof|connection reset|os error 104|connection closed before message completed/i
      .test(text);
}

/** One line for an operator: what failed and, for 403, the Role rule that fixes it. */
export function explain(
  e: unknown,
  namespace: string,
  kind = "endpointslices.discovery.k8s.io",
): string {
  if (isForbidden(e)) {
    const [plural, ...group] = kind.split(".");
    return `forbidden: ${(e as Error).message}. Grant the pod's ServiceAccount a Role in ` +
      `namespace "${namespace}" with the rule {apiGroups: ["${group.join(".")}"], ` +
      `resources: ["${plural}"], verbs: ["get", "list", "watch"]} and a RoleBinding to it`;
  }
  if (isUnauthorized(e)) {
    return `unauthorized (401): ${(e as Error).message}; re-reading the token`;
  }
  const message = (e as Error)?.message ?? String(e);
  const cause = (e as Error)?.cause;
  // Deno's fetch says only "fetch failed" and puts what failed in `cause`, after the request's
  // URL (which the log line's namespace and resource already say).
  if (!(cause instanceof Error)) return message;
  const why = cause.message.split("\n")[0].replace(
    /^error sending request for url \([^)]*\): /,
    "",
  );
  const line = `${message}: ${why}`;
  return /invalid peer certificate: (UnknownIssuer|BadSignature)/i.test(why)
    ? `${line}; the API server's certificate is not signed by the CA it is checked against ` +
      "(in a Pod the service account's ca.crt, else the kubeconfig cluster's certificate-authority)"
    : line;
}
