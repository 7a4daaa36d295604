/**
 * Serialized once: the bodies of a Service view, one per filter shape, made on first use and
 * shared by every blocking query, plain request and SSE stream that asks for the same shape. An
 * SSE frame (`id:` and `data:` lines, UTF-8) is made from the same body once and the very same
 * bytes are handed to every stream, so a change costs one serialization per shape, not one per
 * client. Views are immutable, so a memo never goes stale; it lives as long as its view.
 *
 * @module
 */
import type { ServiceView } from "./service_view.ts";
import { sseEvent } from "./sse_frame.ts";

/**
 * Shapes memoized per view. Consumers of one sidecar ask for a few shapes (the default, a port,
 * a family); past this many, a view's extra shapes are serialized per request so that a client
 * cycling through query strings cannot grow the memo.
 */
export const MAX_SHAPES_PER_VIEW = 16;

const encoder = new TextEncoder();

/** One body of a view in one shape, and its SSE frame. */
export class ViewBody {
  /** The body (JSON or text). */
  readonly body: string;
  #index: number;
  #frames = new Map<string, Uint8Array>();

  /** Wraps a body made for a view with this index. */
  constructor(body: string, index: number) {
    this.body = body;
    this.#index = index;
  }

  /** The SSE event `type` of this body (`event:`, `id: <index>`, `data:` lines): made once per
   * type, then the same bytes are handed to every stream. */
  frame(type: string): Uint8Array {
    let f = this.#frames.get(type);
    if (!f) {
      f = encoder.encode(sseEvent({ event: type, id: this.#index, data: this.body }));
      this.#frames.set(type, f);
    }
    return f;
  }
}

const memo = new WeakMap<ServiceView, Map<string, ViewBody>>();

/** The body of `view` in the shape named `shape`, made by `render` at most once per view. */
export function bodyOf(view: ServiceView, shape: string, render: () => string): ViewBody {
  let shapes = memo.get(view);
  if (!shapes) memo.set(view, shapes = new Map());
  let s = shapes.get(shape);
  if (s) return s;
  s = new ViewBody(render(), view.index);
  if (shapes.size < MAX_SHAPES_PER_VIEW) shapes.set(shape, s);
  return s;
}
