/**
 * Watching the sidecar serve a change, three ways at once: a poller of /endpoints with
 * If-None-Match (back to back on one kept-alive connection), blocking queries on
 * /v1/services/{ns}/{name}, and the bench's own cluster-scoped watch on the API server, which
 * timestamps each event so that event → served is the sidecar's own part.
 *
 * @module
 */
import type { EndpointSlice } from "../tests/support/cluster/types.ts";
import { openWatch } from "../tests/support/cluster/watch.ts";
import { clusterSlicesPath } from "./_fixtures.ts";
import { KeepAliveClient } from "./_http.ts";
import { now, sleep } from "./util.ts";

/** One answer of the poller. */
export interface View {
  index: number;
  /** When the answer's headers arrived. */
  t: number;
  text: string;
}

/** Polls /endpoints with If-None-Match on one kept-alive connection, `gapMs` apart. */
export class Poller {
  polls = 0;
  #etag = "";
  #waiters = new Set<(v: View) => void>();
  #stop = false;
  #done: Promise<void>;
  #t0 = now();
  #t1 = 0;
  #client: KeepAliveClient;

  private constructor(client: KeepAliveClient, readonly gapMs: number) {
    this.#client = client;
    this.#done = this.#run();
  }

  static async start(port: number, gapMs: number): Promise<Poller> {
    return new Poller(await KeepAliveClient.open(port), gapMs);
  }

  async #run(): Promise<void> {
    const decoder = new TextDecoder();
    while (!this.#stop) {
      const headers: Record<string, string> = {};
      if (this.#etag) headers["If-None-Match"] = this.#etag;
      const r = await this.#client.get("/endpoints", headers);
      this.polls++;
      if (r.status === 200) {
        this.#etag = r.headers["etag"] ?? "";
        const v = {
          index: Number(r.headers["x-discovery-index"]),
          t: r.headAt,
          text: decoder.decode(r.body),
        };
        for (const w of this.#waiters) w(v);
      }
      if (this.gapMs > 0) await sleep(this.gapMs);
    }
    this.#t1 = now();
  }

  /** Resolves with the first view from now on that matches. */
  next(match: (v: View) => boolean, timeoutMs: number): Promise<View> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        reject(new Error(`no matching view within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = (v: View) => {
        if (!match(v)) return;
        clearTimeout(timer);
        this.#waiters.delete(w);
        resolve(v);
      };
      this.#waiters.add(w);
    });
  }

  /** Mean time between two polls so far (ms). */
  get periodMs(): number {
    return ((this.#t1 || now()) - this.#t0) / Math.max(1, this.polls);
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
    this.#client.close();
  }
}

/** Blocking queries (`?index=N&wait=60s`) in a loop: when each new index was answered. */
/** Blocking queries (`?index=N&wait=60s`) in a loop: when each new index was answered. */
export class Blocker {
  /** index → when the answer carrying it arrived. */
  seen = new Map<number, number>();
  #client: KeepAliveClient;
  #done: Promise<void>;
  #stop = false;

  private constructor(client: KeepAliveClient, path: string, index: number) {
    this.#client = client;
    this.#done = this.#run(path, index);
  }

  static async start(port: number, path: string): Promise<Blocker> {
    const client = await KeepAliveClient.open(port);
    const first = await client.get(path);
    return new Blocker(client, path, Number(first.headers["x-discovery-index"]));
  }

  async #run(path: string, index: number): Promise<void> {
    while (!this.#stop) {
      let r;
      try {
        r = await this.#client.get(`${path}?index=${index}&wait=60s`);
      } catch {
        return; // closed by stop()
      }
      const i = Number(r.headers["x-discovery-index"]);
      if (!this.seen.has(i)) this.seen.set(i, r.headAt);
      index = i;
    }
  }

  /** When the answer with this index arrived, waiting up to `timeoutMs`. */
  async arrival(index: number, timeoutMs = 2000): Promise<number | undefined> {
    const deadline = now() + timeoutMs;
    while (now() < deadline) {
      const t = this.seen.get(index);
      if (t !== undefined) return t;
      await sleep(1);
    }
    return undefined;
  }

  async stop(): Promise<void> {
    this.#stop = true;
    this.#client.close();
    await this.#done;
  }
}

export class SliceWatch {
  /** resourceVersion → arrival time, type. */
  events = new Map<string, { t: number; type: string }>();
  modified = 0;
  #stream?: Awaited<ReturnType<typeof openWatch<EndpointSlice>>>;
  #done?: Promise<void>;

  async open(ns: string, service?: string): Promise<void> {
    const stream = this.#stream = await openWatch<EndpointSlice>(clusterSlicesPath(ns, service));
    this.#done = (async () => {
      while (true) {
        let ev;
        try {
          ev = await stream.next({ timeoutMs: 3_600_000 });
        } catch {
          return;
        }
        if (!ev) return;
        const t = now();
        if (ev.type === "MODIFIED") this.modified++;
        this.events.set(ev.object.metadata?.resourceVersion ?? "", { t, type: ev.type });
      }
    })();
  }

  /** The arrival of the event with this resourceVersion, waiting up to `timeoutMs`. */
  async arrival(rv: number, timeoutMs = 2000): Promise<number | undefined> {
    const deadline = now() + timeoutMs;
    while (now() < deadline) {
      const e = this.events.get(String(rv));
      if (e) return e.t;
      await sleep(1);
    }
    return undefined;
  }

  async close(): Promise<void> {
    await this.#stream?.close();
    await this.#done;
  }
}

/** Whether the Endpoints body lists the Pod as ready (true), not ready (false) or not at all. */
export function podReadyIn(text: string, pod: string): boolean | undefined {
  type Addr = { targetRef?: { name?: string } };
  const ep = JSON.parse(text) as {
    subsets?: { addresses?: Addr[]; notReadyAddresses?: Addr[] }[];
  };
  for (const s of ep.subsets ?? []) {
    if (s.addresses?.some((a) => a.targetRef?.name === pod)) return true;
    if (s.notReadyAddresses?.some((a) => a.targetRef?.name === pod)) return false;
  }
  return undefined;
}

/** The current change index of each watched Service, from /v1/services. */
export async function indexes(url: string): Promise<Map<string, number>> {
  const r = await fetch(`${url}/v1/services`, { headers: { "Accept-Encoding": "identity" } });
  const body = await r.json() as { services: { namespace: string; name: string; index: number }[] };
  return new Map(body.services.map((s) => [`${s.namespace}/${s.name}`, s.index]));
}
