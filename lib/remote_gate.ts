/**
 * The door for clients outside the Pod: an accept loop of its own in front of an HTTP server,
 * because `Deno.serve` has no knob for any of this (no header-read timeout, no idle keep-alive
 * limit, no connection cap: 8,000 held connections were all kept). Each accepted connection is
 * counted against a total cap and a cap per client address and closed at once past either
 * (Consul's agent caps 200 per client address); it must finish its request headers within the
 * header limit (nginx's `client_header_timeout`, Go's `ReadHeaderTimeout`) before anything else
 * is spent on it; then it is piped to the inner HTTP server on loopback, and closed once no byte
 * has moved either way for the idle limit (nginx's `keepalive_timeout`), or once the bytes of a
 * following request do not end their headers within the header limit. The inner server learns
 * the real client address from the port the pipe connects from ({@linkcode RemoteGate.peerOf}).
 * Clients the Pod counts as its own (lib/access.ts) pass uncounted and untimed.
 *
 * @module
 */
import type { Logger } from "./log.ts";

/** The limits on clients outside the Pod (lib/config.ts has their settings and defaults). */
export interface ConnectionLimits {
  /** Time from accepting a connection, or from the first byte of a request, to the end of its
   * headers (ms). */
  headerTimeoutMs: number;
  /** A connection on which no byte moved either way this long is closed (ms). */
  idleTimeoutMs: number;
  /** Connections from outside the Pod held at once; more are closed on accept. */
  maxConnections: number;
  /** Connections held at once per client address; more are closed on accept. */
  maxPerClient: number;
}

/** Options for {@linkcode RemoteGate}. */
export interface RemoteGateOptions {
  /** Where admitted connections are piped: the inner HTTP server's loopback address (or later,
   * with {@linkcode RemoteGate.setInner}). */
  inner?: Deno.NetAddr;
  limits: ConnectionLimits;
  /** Whether a client is one of the Pod's own (no caps, no timers). */
  isLocal: (hostname: string) => boolean;
  log: Logger;
}

/** Counts since start, for metrics and tests. */
export interface GateStats {
  /** Connections open now, counted against the caps. */
  open: number;
  /** Closed on accept: over the per-client cap, or the total cap held fairly. */
  refused: number;
  /** Closed to make room under the total cap for a client holding fewer. */
  shed: number;
  /** Closed for not finishing request headers in time. */
  headerTimeouts: number;
  /** Closed after the idle limit. */
  idleTimeouts: number;
}

/** Longest request head read before the pipe opens; Deno's own server allows more, but a probe
 * or a data request is a few hundred bytes. Past it: 431 and close. */
const MAX_HEAD_BYTES = 16 * 1024;
/** How often held connections are checked against the time limits: one timer for all of them,
 * so the limits hold to within this. */
const SWEEP_MS = 1_000;
/** Read buffers of each direction of a held connection. */
const CLIENT_READ_BYTES = 1024;
const SERVER_READ_BYTES = 4096;
const END_OF_HEAD = new Uint8Array([13, 10, 13, 10]);
/** A failing accept (out of file descriptors and the like) is logged at most this often, so a
 * flood cannot flood the log. */
const ACCEPT_FAILURE_LOG_MS = 60_000;
/** Pause after a failing accept before the next: the next may work once a socket closes. */
const ACCEPT_RETRY_MS = 100;

interface Held {
  conn: Deno.TcpConn;
  inner?: Deno.TcpConn;
  peer: string;
  counted: boolean;
  /** When the current request head began; undefined between requests. */
  headSince?: number;
  lastByte: number;
  /** The last 3 bytes from the client, to find a head's end across reads. */
  tail: Uint8Array;
}

/** An accept loop with connection caps and time limits, piping to an inner server. */
export class RemoteGate {
  /** Counts since start. */
  readonly stats: GateStats = {
    open: 0,
    refused: 0,
    shed: 0,
    headerTimeouts: 0,
    idleTimeouts: 0,
  };
  #options: RemoteGateOptions;
  #held = new Set<Held>();
  /** The counted connections of each client address. */
  #perClient = new Map<string, Set<Held>>();
  /** The real client of each pipe, by the pipe's address and port on the inner server's side. */
  #peers = new Map<string, Deno.NetAddr>();
  #sweep: ReturnType<typeof setInterval>;
  #listeners: Deno.TcpListener[] = [];
  #acceptLoggedAt = 0;

  /** A gate with no listener yet; {@linkcode serve} adds one. */
  constructor(options: RemoteGateOptions) {
    this.#options = options;
    this.#sweep = setInterval(() => this.#check(Date.now()), SWEEP_MS);
  }

  /** Sets where admitted connections are piped. */
  setInner(addr: Deno.NetAddr): void {
    this.#options = { ...this.#options, inner: addr };
  }

  /** The real client of a connection the inner server got from this gate, by its source
   * address and port (any other connection to the inner server: undefined). */
  peerOf(innerClient: Deno.NetAddr): Deno.NetAddr | undefined {
    return this.#peers.get(pipeKey(innerClient));
  }

  /** Accepts on `listener` until {@linkcode close}. */
  serve(listener: Deno.TcpListener): Promise<void> {
    this.#listeners.push(listener);
    return (async () => {
      for (;;) {
        let conn: Deno.TcpConn;
        try {
          conn = await listener.accept();
        } catch (e) {
          if (e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) return;
          // Out of file descriptors and the like: the next accept may work.
          if (Date.now() - this.#acceptLoggedAt > ACCEPT_FAILURE_LOG_MS) {
            this.#acceptLoggedAt = Date.now();
            this.#options.log.log("warn", "accept failed", { error: String(e) });
          }
          await new Promise((r) => setTimeout(r, ACCEPT_RETRY_MS));
          continue;
        }
        this.#admit(conn);
      }
    })();
  }

  /** Stops accepting; held connections stay until {@linkcode close}. */
  stopAccepting(): void {
    for (const l of this.#listeners.splice(0)) {
      try {
        l.close();
      } catch {
        // Already closed.
      }
    }
  }

  /** Stops accepting and closes every held connection. */
  close(): void {
    this.stopAccepting();
    clearInterval(this.#sweep);
    for (const h of this.#held) this.#drop(h);
  }

  #admit(conn: Deno.TcpConn): void {
    const peer = (conn.remoteAddr as Deno.NetAddr).hostname;
    const counted = !this.#options.isLocal(peer);
    if (counted) {
      const { maxConnections, maxPerClient } = this.#options.limits;
      const mine = this.#perClient.get(peer)?.size ?? 0;
      if (
        mine >= maxPerClient ||
        (this.stats.open >= maxConnections && !this.#makeRoom(mine))
      ) {
        this.stats.refused++;
        conn.close();
        return;
      }
    }
    const now = Date.now();
    const h: Held = { conn, peer, counted, headSince: now, lastByte: now, tail: new Uint8Array() };
    this.#held.add(h);
    if (counted) {
      this.stats.open++;
      const mine = this.#perClient.get(peer) ?? new Set();
      this.#perClient.set(peer, mine.add(h));
    }
    void this.#run(h).catch(() => {}).finally(() => this.#drop(h));
  }

  /**
   * The total cap is full and a client holding `mine` connections asks for one more: closes one
   * connection of the address holding the most, if that is at least two more than `mine` (or
   * `mine` is 0), so that no address is left with fewer than the newcomer (max-min fairness, to
   * within one: the total is shared, never owned by whoever came first). Of that address's connections the least useful goes: one still waiting
   * for its request headers, else the one idle longest. Chosen over a headroom reserved for new
   * addresses because a reserve is itself a pool the next few addresses fill, while this holds
   * for any number of them; and over shedding at random (Envoy's overload manager) because the
   * client that takes the most pays, as nginx's per-key `limit_conn` would have it pay. Two
   * clients within one of each other never take slots from each other, so there is no churn.
   */
  #makeRoom(mine: number): boolean {
    let heaviest: Set<Held> | undefined;
    for (const held of this.#perClient.values()) {
      if (!heaviest || held.size > heaviest.size) heaviest = held;
    }
    // One more than the newcomer is not enough: the shed would only swap the two counts, and
    // two clients whose pools together want more than the cap would close each other's
    // connections on every reconnect. A newcomer holding nothing (the kubelet) always gets in.
    if (!heaviest || heaviest.size <= mine || (mine > 0 && heaviest.size === mine + 1)) {
      return false;
    }
    let victim: Held | undefined;
    for (const h of heaviest) {
      const waiting = h.headSince !== undefined, victimWaiting = victim?.headSince !== undefined;
      if (
        !victim || (waiting && !victimWaiting) ||
        (waiting === victimWaiting && h.lastByte < victim.lastByte)
      ) victim = h;
    }
    this.stats.shed++;
    this.#drop(victim!);
    return true;
  }

  async #run(h: Held): Promise<void> {
    const head = await this.#readHead(h);
    if (!head) return;
    const { hostname, port } = this.#options.inner!;
    const inner = await Deno.connect({ hostname, port });
    if (!this.#held.has(h)) {
      inner.close();
      return;
    }
    h.inner = inner;
    this.#peers.set(pipeKey(inner.localAddr as Deno.NetAddr), h.conn.remoteAddr as Deno.NetAddr);
    await writeAll(inner, head);
    await Promise.all([
      this.#pipe(h, h.conn, inner, true),
      this.#pipe(h, inner, h.conn, false),
    ]);
  }

  /** Reads until the end of the first request head; undefined when the client gave up or sent
   * too much (then answered 431). */
  async #readHead(h: Held): Promise<Uint8Array | undefined> {
    let data = new Uint8Array(0);
    const buf = new Uint8Array(CLIENT_READ_BYTES);
    for (;;) {
      const n = await h.conn.read(buf);
      if (n === null) return undefined;
      const next = new Uint8Array(data.length + n);
      next.set(data);
      next.set(buf.subarray(0, n), data.length);
      data = next;
      h.lastByte = Date.now();
      const end = indexOf(data, END_OF_HEAD, Math.max(0, data.length - n - 3));
      if (end >= 0) {
        this.#afterClientBytes(h, data.subarray(end + 4));
        return data;
      }
      if (data.length > MAX_HEAD_BYTES) {
        await writeAll(
          h.conn,
          new TextEncoder().encode(
            "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n" +
              "Content-Length: 0\r\n\r\n",
          ),
        ).catch(() => {});
        return undefined;
      }
    }
  }

  /** Keeps the head clock: bytes after a head's end start the next head. */
  #afterClientBytes(h: Held, chunk: Uint8Array): void {
    if (chunk.length === 0) {
      h.headSince = undefined;
      return;
    }
    const joined = new Uint8Array(h.tail.length + chunk.length);
    joined.set(h.tail);
    joined.set(chunk, h.tail.length);
    const last = lastIndexOf(joined, END_OF_HEAD);
    if (last >= 0 && last + 4 === joined.length) h.headSince = undefined;
    else if (last >= 0 || h.headSince === undefined) h.headSince = Date.now();
    h.tail = joined.slice(Math.max(0, joined.length - 3));
  }

  async #pipe(h: Held, from: Deno.TcpConn, to: Deno.TcpConn, fromClient: boolean): Promise<void> {
    // A pending read holds its buffer for as long as the connection idles: small ones, since a
    // held connection's cost is what the caps multiply (a larger answer takes more reads).
    const buf = new Uint8Array(fromClient ? CLIENT_READ_BYTES : SERVER_READ_BYTES);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        h.lastByte = Date.now();
        if (fromClient && h.counted) this.#afterClientBytes(h, buf.subarray(0, n));
        await writeAll(to, buf.subarray(0, n));
      }
      // A client that closes its sending side after the request still gets the answer.
      if (fromClient) return await to.closeWrite();
    } catch {
      // A reset or a close from the other direction: the connection is over.
    }
    this.#drop(h);
  }

  #check(now: number): void {
    const { headerTimeoutMs, idleTimeoutMs } = this.#options.limits;
    for (const h of this.#held) {
      if (!h.counted) continue;
      if (h.headSince !== undefined && now - h.headSince > headerTimeoutMs) {
        this.stats.headerTimeouts++;
        this.#drop(h);
      } else if (now - h.lastByte > idleTimeoutMs) {
        this.stats.idleTimeouts++;
        this.#drop(h);
      }
    }
  }

  #drop(h: Held): void {
    if (!this.#held.delete(h)) return;
    for (const c of [h.conn, h.inner]) {
      try {
        c?.close();
      } catch {
        // Already closed.
      }
    }
    if (h.inner) this.#peers.delete(pipeKey(h.inner.localAddr as Deno.NetAddr));
    if (!h.counted) return;
    this.stats.open--;
    const mine = this.#perClient.get(h.peer);
    mine?.delete(h);
    if (mine?.size === 0) this.#perClient.delete(h.peer);
  }
}

function pipeKey(addr: Deno.NetAddr): string {
  return `${addr.hostname} ${addr.port}`;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

function indexOf(data: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i <= data.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (data[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function lastIndexOf(data: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = data.length - needle.length; i >= 0; i--) {
    for (let j = 0; j < needle.length; j++) if (data[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
