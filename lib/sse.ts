/**
 * Server-Sent Events for change notification. A stream first sends the current state of each
 * selected Service (`event: snapshot`), then one `event: update` per change with `id` = the
 * change index; `Last-Event-ID` resumes with every Service that changed since, so nothing is
 * missed. Each event carries a Service's whole state, so a consumer that reads slowly is never
 * queued behind: the stream keeps at most the latest state per Service and sends that (a fresh
 * snapshot) when the consumer reads again. The cache listener only marks Services pending, so a
 * stalled client cannot slow the watch loop or other clients.
 *
 * @module
 */
import type { EndpointCache, ServiceView } from "./cache.ts";

/** Comment line sent when nothing else was, so proxies keep an idle stream open. */
export const HEARTBEAT_MS = 15_000;

/** One SSE event in wire format. */
export function sseEvent(event: { event?: string; id?: string | number; data: string }): string {
  let out = "";
  if (event.event) out += `event: ${event.event}\n`;
  if (event.id !== undefined) out += `id: ${event.id}\n`;
  for (const line of event.data.split("\n")) out += `data: ${line}\n`;
  return out + "\n";
}

/** Options for {@linkcode sseResponse}. */
export interface SseOptions {
  /** Which views the stream carries. */
  select: (view: ServiceView) => boolean;
  /** The event data of a view. */
  render: (view: ServiceView) => string;
  /** Resume after this index (the client's Last-Event-ID). */
  lastEventId?: number;
  /** Called once when the stream ends, however it ends. */
  onClose?: () => void;
  /** Heartbeat period. Default {@linkcode HEARTBEAT_MS}. */
  heartbeatMs?: number;
  /** Ends the stream (the server shutting down). */
  signal?: AbortSignal;
}

/** A `text/event-stream` response over the cache's changes. */
export function sseResponse(cache: EndpointCache, options: SseOptions): Response {
  const encoder = new TextEncoder();
  const pending = new Map<string, ServiceView>();
  let wake: (() => void) | undefined;
  let first = true;
  let closed = false;
  const key = (v: ServiceView) => `${v.namespace}/${v.name}`;
  for (const v of cache.views()) {
    if (options.select(v) && (options.lastEventId === undefined || v.index > options.lastEventId)) {
      pending.set(key(v), v);
    }
  }
  const unsubscribe = cache.subscribe((changed) => {
    for (const v of changed) if (options.select(v)) pending.set(key(v), v);
    if (pending.size) wake?.();
  });
  const close = () => {
    if (closed) return;
    closed = true;
    unsubscribe();
    wake?.();
    options.onClose?.();
  };
  options.signal?.addEventListener("abort", close, { once: true });
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!pending.size && !closed) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, options.heartbeatMs ?? HEARTBEAT_MS);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
      }
      if (closed) {
        controller.close();
        return;
      }
      if (!pending.size) {
        controller.enqueue(encoder.encode(": heartbeat\n\n"));
        return;
      }
      const views = [...pending.values()].sort((a, b) => a.index - b.index);
      pending.clear();
      const event = first && options.lastEventId === undefined ? "snapshot" : "update";
      first = false;
      controller.enqueue(encoder.encode(
        views.map((v) => sseEvent({ event, id: v.index, data: options.render(v) })).join(""),
      ));
    },
    cancel: close,
  }, { highWaterMark: 0 });
  return new Response(stream, {
    headers: {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-cache",
      // Tells nginx-style proxies not to buffer the stream.
      "X-Accel-Buffering": "no",
    },
  });
}
