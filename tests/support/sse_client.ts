/**
 * Test clients of the sidecar's Server-Sent Events: a minimal reader that follows the HTML
 * Living Standard's EventSource processing model (a response that is not `200 text/event-stream`
 * is fatal: it never reconnects; a network error or an ended stream reconnects after the
 * stream's `retry:` delay with `Last-Event-ID`), and a state model both it and `npm:eventsource`
 * feed, which applies `snapshot`, `update`, `removed` and `reset` events as docs/api.md says.
 *
 * @module
 */

/** One dispatched event. */
export interface SseMessage {
  /** The event type (`message` when the stream named none). */
  event: string;
  /** The last event id in force when it was dispatched. */
  id: string;
  /** The data lines joined with "\n". */
  data: string;
}

/** What a consumer knows: the latest state per Service, built only from events. */
export class SseState {
  /** Latest event data per `namespace/name`. */
  readonly services = new Map<string, { index: number; endpoints: { addresses: string[] }[] }>();
  /** Every event seen, in order, for assertions and failure messages. */
  readonly log: SseMessage[] = [];

  /** Applies one event. */
  apply(m: SseMessage): void {
    this.log.push(m);
    if (m.event === "reset") {
      this.services.clear();
      return;
    }
    if (m.event !== "snapshot" && m.event !== "update" && m.event !== "removed") return;
    const body = JSON.parse(m.data);
    const key = `${body.namespace}/${body.name}`;
    if (m.event === "removed") this.services.delete(key);
    else this.services.set(key, body);
  }

  /** The sorted first addresses of a Service's endpoints, or undefined when unknown. */
  addresses(key: string): string[] | undefined {
    return this.services.get(key)?.endpoints.map((e) => e.addresses[0]!).sort();
  }
}

/** Options for {@linkcode strictReader}. */
export interface StrictReaderOptions {
  /** Called with each dispatched event. */
  onMessage: (m: SseMessage) => void;
  /** Reconnection delay until the stream sets one (the spec leaves the default to the UA). */
  retryMs?: number;
}

/** A running {@linkcode strictReader}. */
export interface StrictReader {
  /** Set once the reader stopped for good because of a response that was not 200 SSE. */
  readonly fatal: string | undefined;
  /** Connections that were answered 200 text/event-stream. */
  readonly opens: number;
  /** How each stream ended: "clean" (the server ended it) or "error" (cut or refused; a message
   * the reader could not apply is `fatal` instead). */
  readonly endings: ("clean" | "error")[];
  /** Stops reconnecting and closes the current stream. */
  close(): void;
}

/** Reads `url` as a spec-following EventSource would, reconnecting with its own logic only. */
export function strictReader(url: string, options: StrictReaderOptions): StrictReader {
  const abort = new AbortController();
  let fatal: string | undefined;
  let opens = 0;
  let retryMs = options.retryMs ?? 3000;
  let lastEventId = "";
  const endings: ("clean" | "error")[] = [];
  const run = async () => {
    while (!abort.signal.aborted) {
      try {
        const headers: Record<string, string> = { Accept: "text/event-stream" };
        if (lastEventId) headers["Last-Event-ID"] = lastEventId;
        const resp = await fetch(url, { headers, signal: abort.signal });
        const type = resp.headers.get("content-type") ?? "";
        if (resp.status !== 200 || !type.startsWith("text/event-stream")) {
          fatal = `${resp.status} ${type}: ${await resp.text()}`;
          return;
        }
        opens++;
        let data: string[] = [];
        let event = "";
        for await (const line of lines(resp.body!)) {
          if (line === "") {
            if (data.length) {
              const message = { event: event || "message", id: lastEventId, data: data.join("\n") };
              try {
                options.onMessage(message);
              } catch (e) {
                // Not a network error: a message the client could not apply ends the reader.
                fatal = `cannot apply ${JSON.stringify(message).slice(0, 200)}: ${e}`;
                abort.abort();
                return;
              }
            }
            data = [];
            event = "";
            continue;
          }
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "event") event = value;
          else if (field === "data") data.push(value);
          else if (field === "id" && !value.includes("\0")) lastEventId = value;
          else if (field === "retry" && /^\d+$/.test(value)) retryMs = Number(value);
        }
        endings.push("clean");
      } catch {
        // A network error: reconnect, as the spec says.
        if (!abort.signal.aborted) endings.push("error");
      }
      if (abort.signal.aborted) return;
      await new Promise((r) => setTimeout(r, retryMs));
    }
  };
  void run();
  return {
    get fatal() {
      return fatal;
    },
    get opens() {
      return opens;
    },
    endings,
    close: () => abort.abort(),
  };
}

async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of body.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
      const len = buf.startsWith("\r\n", nl) ? 2 : 1;
      yield buf.slice(0, nl);
      buf = buf.slice(nl + len);
    }
  }
}
