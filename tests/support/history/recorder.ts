/**
 * The history checker's clients: pollers, blocking-query loops and SSE readers against one
 * sidecar, each logging every answer it gets (status, `X-Discovery-Index`, ETag, body, time) in
 * one shared list that the checker reads afterwards. A client never interprets what it gets,
 * except the index a blocking query passes back and the `Last-Event-ID` an SSE reader resumes
 * with after its stream ends.
 *
 * @module
 */
import { sleep } from "../cluster/wait.ts";

/** What a client asks for, which decides how the checker reads the body. */
export type AnswerKind = "endpoints" | "service" | "services" | "sse";

/** One answer a client got. */
export interface Answer {
  /** The client's name, unique in a run. */
  client: string;
  /** What was asked for. */
  kind: AnswerKind;
  /** The Service the answer is about (`namespace/name`); the namespace for "services". */
  subject: string;
  /** When it arrived (ms, performance.now()). */
  t: number;
  /** HTTP status; 0 when the request failed without an answer. */
  status: number;
  /** X-Discovery-Index, or the SSE event id. */
  index?: number;
  /** ETag header. */
  etag?: string;
  /** The body (an SSE event's data); the error for status 0. */
  body: string;
  /** SSE event name (snapshot, update, removed); "(resumed)" marks a stream (re)opened with
   * `Last-Event-ID` (`index`), "(stream ended)" one the sidecar ended. */
  event?: string;
  /** X-Discovery-Last-Updated on the run's clock (ms, performance.now()). */
  knownAt?: number;
  /** X-Discovery-Age-Seconds. */
  age?: number;
}

/** Poll period of a poller: four answers a second per client keep the log small. */
const POLL_MS = 250;
/** A request that takes longer than this counts as failed (status 0). */
const REQUEST_TIMEOUT_MS = 5_000;
/** Every client ends within this of its stop (its requests are bounded by their own timeouts,
 * at most 15 s); one still running then is named rather than waited for. */
const STOP_TIMEOUT_MS = 20_000;
/** Wait of a blocking query: returns often enough to show freshness after faults. */
const BLOCKING_WAIT = "5s";

/** The clients of a run and the answers they logged. */
export class Recorder {
  /** Every answer, in arrival order. */
  readonly answers: Answer[] = [];
  #stop = new AbortController();
  #loops: { client: string; done: Promise<void>; finished: boolean }[] = [];

  /** Polls `url` until stopped. */
  poll(client: string, url: string, about: { kind: AnswerKind; subject: string }): void {
    this.#run(
      client,
      (async () => {
        while (!this.#stop.signal.aborted) {
          await this.#get(client, url, about);
          await sleep(POLL_MS);
        }
      })(),
    );
  }

  /** Holds blocking queries on `url` (`?index=&wait=`), passing back the index answered. */
  block(client: string, url: string, subject: string): void {
    this.#run(
      client,
      (async () => {
        let index = 0;
        while (!this.#stop.signal.aborted) {
          const sep = url.includes("?") ? "&" : "?";
          const a = await this.#get(client, `${url}${sep}index=${index}&wait=${BLOCKING_WAIT}`, {
            kind: "service",
            subject,
          }, 15_000);
          if (a?.status === 200 && a.index !== undefined) index = a.index;
          else await sleep(POLL_MS);
        }
      })(),
    );
  }

  /** Reads an SSE stream; `subject` names the Service, or "*" for /v1/watch. */
  sse(client: string, url: string, subject: string): void {
    this.#run(
      client,
      (async () => {
        let lastId: string | undefined;
        while (!this.#stop.signal.aborted) {
          try {
            const r = await this.readStream(client, url, {
              subject,
              lastId,
              signal: this.#stop.signal,
            });
            lastId = r.lastId;
            if (!r.ended) {
              await sleep(POLL_MS);
              continue;
            }
            if (!this.#stop.signal.aborted) {
              this.answers.push({
                client,
                kind: "sse",
                subject,
                t: performance.now(),
                status: 200,
                body: "",
                event: "(stream ended)",
              });
            }
          } catch (e) {
            if (this.#stop.signal.aborted) break;
            this.log(client, "sse", subject, 0, String(e));
            await sleep(POLL_MS);
          }
        }
      })(),
    );
  }

  /** Runs a client of another shape until stopped: `loop` gets the signal that stops it. */
  spawn(client: string, loop: (signal: AbortSignal) => Promise<void>): void {
    this.#run(client, loop(this.#stop.signal));
  }

  #run(client: string, done: Promise<void>): void {
    const entry = { client, done, finished: false };
    done.finally(() => entry.finished = true);
    this.#loops.push(entry);
  }

  /** Reads one SSE stream from `url` until it ends or `signal` aborts, logging every event;
   * `lastId` is sent as `Last-Event-ID` (and logged as a "(resumed)" answer). Returns the last
   * event id seen (or `lastId`) and whether the sidecar ended the stream (not `signal`). */
  async readStream(
    client: string,
    url: string,
    o: { subject: string; lastId?: string; signal: AbortSignal },
  ): Promise<{ lastId?: string; ended: boolean }> {
    let lastId = o.lastId;
    const headers: Record<string, string> = lastId ? { "Last-Event-ID": lastId } : {};
    const res = await fetch(url, { headers, signal: o.signal });
    if (res.status !== 200 || !res.body) {
      this.log(client, "sse", o.subject, res.status, await res.text(), res.headers);
      return { lastId, ended: false };
    }
    if (lastId) {
      this.answers.push({
        client,
        kind: "sse",
        subject: o.subject,
        t: performance.now(),
        status: 200,
        index: Number(lastId),
        body: "",
        event: "(resumed)",
      });
    }
    for await (const e of sseEvents(res.body, o.signal)) {
      if (e.id !== undefined) lastId = e.id;
      const data = e.data;
      let about = o.subject;
      try {
        const j = JSON.parse(data);
        if (j?.namespace && j?.name) about = `${j.namespace}/${j.name}`;
      } catch {
        // Not JSON: the checker reports it as a false state.
      }
      this.answers.push({
        client,
        kind: "sse",
        subject: about,
        t: performance.now(),
        status: 200,
        index: e.id === undefined ? undefined : Number(e.id),
        body: data,
        event: e.event ?? "message",
      });
    }
    // A stream cancelled by its own signal did not end: the client dropped it.
    return { lastId, ended: !o.signal.aborted };
  }

  /** Stops every client and waits for them, at most {@linkcode STOP_TIMEOUT_MS}; returns the
   * clients still running then (a client that ignores its stop signal, named for a fix). */
  async stop(): Promise<string[]> {
    this.#stop.abort();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(this.#loops.map((l) => l.done)),
      new Promise((resolve) => timer = setTimeout(resolve, STOP_TIMEOUT_MS)),
    ]).finally(() => clearTimeout(timer));
    return this.#loops.filter((l) => !l.finished).map((l) => l.client);
  }

  async #get(
    client: string,
    url: string,
    about: { kind: AnswerKind; subject: string },
    timeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<Answer | undefined> {
    try {
      const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(timeoutMs)]);
      const res = await fetch(url, { signal });
      const body = await res.text();
      return this.log(client, about.kind, about.subject, res.status, body, res.headers);
    } catch (e) {
      if (this.#stop.signal.aborted) return undefined;
      return this.log(client, about.kind, about.subject, 0, String(e));
    }
  }

  /** Logs one answer (headers read: index, ETag, last updated). */
  log(
    client: string,
    kind: AnswerKind,
    subject: string,
    status: number,
    body: string,
    headers?: Headers,
  ): Answer {
    const index = headers?.get("X-Discovery-Index");
    const updated = headers?.get("X-Discovery-Last-Updated");
    const a: Answer = {
      client,
      kind,
      subject,
      t: performance.now(),
      status,
      index: index === null || index === undefined ? undefined : Number(index),
      etag: headers?.get("ETag") ?? undefined,
      body,
    };
    if (updated) a.knownAt = Date.parse(updated) - performance.timeOrigin;
    const age = headers?.get("X-Discovery-Age-Seconds");
    if (age) a.age = Number(age);
    this.answers.push(a);
    return a;
  }
}

/** Parses a text/event-stream body into events (comments skipped); `signal` cancels the body
 * (and so closes the stream's connection) on abort, whatever the read is waiting for. */
export async function* sseEvents(
  body: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<{ event?: string; id?: string; data: string }> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const cancel = () => void reader.cancel(signal?.reason).catch(() => {});
  signal?.addEventListener("abort", cancel, { once: true });
  if (signal?.aborted) cancel();
  let buf = "";
  let cur: { event?: string; id?: string; data: string[] } = { data: [] };
  try {
    while (true) {
      const { done, value: chunk } = await reader.read();
      if (done) return;
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
        if (line === "") {
          if (cur.data.length || cur.event) {
            yield { event: cur.event, id: cur.id, data: cur.data.join("\n") };
          }
          cur = { data: [] };
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "data") cur.data.push(value);
          else if (field === "event") cur.event = value;
          else if (field === "id") cur.id = value;
        }
      }
    }
  } finally {
    signal?.removeEventListener("abort", cancel);
    reader.releaseLock();
  }
}
