/**
 * The one SSE framer: an event in the wire format of Server-Sent Events (`event:`, `id:`, one
 * `data:` line per line of the body, a blank line). Streams' opening events (lib/sse.ts) and the
 * shared per-view frames (lib/view_bodies.ts) are both written by it.
 *
 * @module
 */

/** One SSE event in wire format. */
export function sseEvent(event: { event?: string; id?: string | number; data: string }): string {
  let out = "";
  if (event.event) out += `event: ${event.event}\n`;
  if (event.id !== undefined) out += `id: ${event.id}\n`;
  for (const line of event.data.split("\n")) out += `data: ${line}\n`;
  return out + "\n";
}
