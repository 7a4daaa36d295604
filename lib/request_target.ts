/**
 * One way to read a request's target, shared by every listener, so that the route a request is
 * answered by and the route its access is checked against are the same. Deno.serve builds
 * `req.url` as `http://` + the Host header + the target (or the target itself in absolute
 * form), and the Host header is whatever the client sent (`[`, `a b`, `h/p`): the target is cut
 * out of it here, never parsed with `new URL` (which throws on such a Host, and resolves `..`
 * and `\` its own way). The path is read as the Go service's `net/http` did: percent-decoded
 * (`%2e` is `.`, `%2f` is `/`), then cleaned as its ServeMux cleans (`//`, `.` and `..`
 * segments); a path that cleaning changes is answered with a redirect to the clean one, as
 * ServeMux does. `\` is an ordinary character, as in Go. The Host header is never used.
 *
 * @module
 */

/** What a request target asks for: a path to route, a redirect, or a 4xx. */
export type Target =
  | { kind: "path"; path: string; search: string }
  | { kind: "redirect"; location: string }
  | { kind: "bad"; status: 400 | 414; message: string };

/** Longest path read (bytes of the raw path, not the query): the longest real one,
 * `/v1/watch/{63}/{63}`, is 140; a longer path is answered 414 before it is decoded. */
export const MAX_PATH_LENGTH = 2048;

/** The request target (path and query, as sent) of a `req.url` that Deno.serve built. */
export function rawTarget(url: string, host: string | null): string {
  if (host !== null) {
    // Origin form (the usual): "http://" + Host + target.
    const prefix = 7 + host.length;
    if (url.charCodeAt(prefix) === 47 && url.startsWith(host, 7) && url.startsWith("http://")) {
      return url.slice(prefix);
    }
  }
  // Absolute form (`GET http://x/p`), or no Host (Deno wrote an authority of its own, which has
  // no "/"): the path starts after the authority.
  const scheme = url.indexOf("://");
  const from = scheme < 0 ? 0 : scheme + 3;
  let i = from;
  while (i < url.length && url[i] !== "/" && url[i] !== "?") i++;
  const rest = url.slice(i);
  return rest.startsWith("/") ? rest : "/" + rest;
}

/** Reads a request: {@linkcode rawTarget}, then {@linkcode readTarget}. */
export function targetOf(req: Request): Target {
  return readTarget(rawTarget(req.url, req.headers.get("host")));
}

/** Reads a request target (`/path?query`) as the Go service did: decoded and cleaned. */
export function readTarget(target: string): Target {
  const q = target.indexOf("?");
  const raw = q < 0 ? target : target.slice(0, q);
  const search = q < 0 ? "" : target.slice(q + 1);
  if (raw.length > MAX_PATH_LENGTH) {
    return { kind: "bad", status: 414, message: `path longer than ${MAX_PATH_LENGTH} bytes` };
  }
  // The common case, a plain clean path, costs three scans and no allocation.
  if (raw.indexOf("%") < 0 && raw.indexOf("//") < 0 && raw.indexOf("/.") < 0) {
    return { kind: "path", path: raw, search };
  }
  const path = percentDecode(raw);
  if (path === undefined) {
    return { kind: "bad", status: 400, message: "bad percent-encoding in the path" };
  }
  const clean = cleanPath(path);
  if (clean !== path) {
    return { kind: "redirect", location: escapePath(clean) + (q < 0 ? "" : "?" + search) };
  }
  return { kind: "path", path, search };
}

/** Go's `net/http` cleanPath: a rooted `path.Clean` that keeps a trailing slash. */
export function cleanPath(p: string): string {
  if (p === "") return "/";
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  const joined = "/" + out.join("/");
  return p.endsWith("/") && joined !== "/" ? joined + "/" : joined;
}

/** `%XX` decoded to bytes, read as UTF-8 (bad bytes become U+FFFD, as the path is only
 * matched against ASCII routes); undefined for a `%` not followed by two hex digits. */
function percentDecode(s: string): string | undefined {
  if (s.indexOf("%") < 0) return s;
  const bytes: number[] = [];
  const enc = new TextEncoder();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37) {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c < 128) {
      bytes.push(c);
    } else {
      bytes.push(...enc.encode(s[i]!));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** A decoded path escaped for a Location header, as Go's `url.URL.EscapedPath` does. */
function escapePath(path: string): string {
  return path.split("/").map((seg) =>
    encodeURIComponent(seg)
      .replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase())
      .replace(/%(24|26|2B|2C|3A|3B|3D|40)/g, (m) => decodeURIComponent(m))
  ).join("/");
}
