/**
 * Who may read what: the default listener serves every interface so that the kubelet's probes
 * (which reach the Pod's IP) work as they did with the Go service, while the endpoint data stays
 * inside the Pod. Health routes and /metrics are open to any client; everything else answers
 * only the Pod's own containers, unless `--allow-remote-data` widens it. A refused client gets
 * 403 JSON naming that setting.
 *
 * "The Pod's own containers" are clients at 127.0.0.1 or ::1 (or 127.0.0.1 mapped into IPv6)
 * and nothing else: not the rest of 127.0.0.0/8, because a service mesh delivers other Pods'
 * traffic from there (Istio's inbound passthrough connects from 127.0.0.6). `--local-clients`
 * adds addresses or CIDR ranges for a setup that needs them.
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
  return isProbePath(path) || path === "/metrics";
}

/** Paths the probe listener serves: /livez, /readyz and the Go service's /health/ subtree. */
export function isProbePath(path: string): boolean {
  return path === "/health" || path.startsWith("/health/") || path === "/livez" ||
    path === "/readyz";
}

/** An address range: IPv4 or IPv6 bytes and a prefix length. */
export interface AddressRange {
  bytes: Uint8Array;
  prefix: number;
}

/** Parses `ADDRESS` or `ADDRESS/PREFIX` (IPv4 or IPv6); undefined when it is neither. */
export function parseRange(text: string): AddressRange | undefined {
  const [addr, prefixText, extra] = text.trim().split("/");
  if (extra !== undefined || !addr) return undefined;
  const bytes = addressBytes(addr);
  if (!bytes) return undefined;
  const max = bytes.length * 8;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  return prefix <= max ? { bytes, prefix } : undefined;
}

/**
 * The predicate "is this client one of the Pod's own containers": 127.0.0.1, ::1 (and
 * ::ffff:127.0.0.1), plus `extra` ranges. An IPv4 address mapped into IPv6 is read as IPv4.
 */
export function localClients(extra: AddressRange[]): (hostname: string) => boolean {
  const ranges = [parseRange("127.0.0.1")!, parseRange("::1")!, ...extra];
  return (hostname) => {
    const bytes = addressBytes(hostname.replace(/^\[|\]$/g, ""));
    return bytes !== undefined && ranges.some((r) => inRange(bytes, r));
  };
}

function inRange(bytes: Uint8Array, r: AddressRange): boolean {
  if (bytes.length !== r.bytes.length) return false;
  let bits = r.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[i]! & mask) !== (r.bytes[i]! & mask)) return false;
  }
  return true;
}

/** The bytes of an IPv4 (4) or IPv6 (16) address; an IPv4-mapped IPv6 address as IPv4. */
function addressBytes(text: string): Uint8Array | undefined {
  const h = text.toLowerCase();
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  if (v4) {
    const b = v4.slice(1).map(Number);
    return b.every((o) => o <= 255) ? new Uint8Array(b) : undefined;
  }
  if (!/^[0-9a-f:.]+$/.test(h) || !h.includes(":")) return undefined;
  const tail = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  let head = h;
  let tailWords: number[] = [];
  if (tail) {
    const b = addressBytes(tail[2]!);
    if (!b) return undefined;
    head = tail[1]!.endsWith("::") ? tail[1]! : tail[1]!.slice(0, -1);
    tailWords = [(b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!];
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const parse = (s: string) => s === "" ? [] : s.split(":").map((w) => parseInt(w, 16));
  const left = parse(halves[0]!);
  const right = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - tailWords.length - left.length - right.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return undefined;
  const words = [
    ...left,
    ...new Array(halves.length === 2 ? fill : 0).fill(0),
    ...right,
    ...tailWords,
  ];
  if (words.some((w) => !(w >= 0 && w <= 0xffff))) return undefined;
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  // ::ffff:a.b.c.d is an IPv4 client on a dual-stack socket.
  if (out.subarray(0, 10).every((x) => x === 0) && out[10] === 0xff && out[11] === 0xff) {
    return out.slice(12);
  }
  return out;
}

/** The 403 a client outside the Pod gets for the data. */
export function forbidden(path: string, client: string): Response {
  return errorResponse(
    403,
    `${path} is served only to clients in this Pod (127.0.0.1 or ::1), not to ${client}; ` +
      `set ${ALLOW_REMOTE_DATA_SETTING} to serve the endpoint data to other clients`,
  );
}
