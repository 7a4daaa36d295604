/**
 * Who may read what: the default listener serves every interface so that the kubelet's probes
 * (which reach the Pod's IP) work as they did with the Go service, while the endpoint data stays
 * inside the Pod. Health routes and /metrics are open to any client; everything else answers
 * only clients on loopback (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104), unless
 * `--allow-remote-data` widens it. A refused client gets 403 JSON naming that setting.
 *
 * @module
 */
import { errorResponse } from "./http_util.ts";

/** The setting that opens the data to clients outside the Pod, as the 403 names it. */
export const ALLOW_REMOTE_DATA_SETTING =
  "--allow-remote-data / KUBERNETES_POD_DISCOVERY_ALLOW_REMOTE_DATA=true";

/**
 * Paths any client may read: the Go service's health route with its ServeMux subtree, the
 * probes, and /metrics. /metrics holds counts and the watched Services' names, never an
 * address, and a Prometheus scrape always comes through the Pod's IP.
 */
export function isOpenPath(path: string): boolean {
  return path === "/health" || path.startsWith("/health/") || path === "/livez" ||
    path === "/readyz" || path === "/metrics";
}

/** Whether a client address is on loopback: 127.0.0.0/8, ::1, or 127.x mapped into IPv6. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true;
  if (/^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true;
  // Deno reports addresses in their canonical text form; the long form is accepted as well.
  return h === "::1" || h === "0:0:0:0:0:0:0:1";
}

/** The 403 a client outside the Pod gets for the data. */
export function forbidden(path: string, client: string): Response {
  return errorResponse(
    403,
    `${path} is served only to clients in this Pod (127.0.0.1 or ::1), not to ${client}; ` +
      `set ${ALLOW_REMOTE_DATA_SETTING} to serve the endpoint data to other clients`,
  );
}
