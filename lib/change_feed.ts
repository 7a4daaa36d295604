/**
 * Publish/subscribe for changes of the view: listeners are called synchronously, in the order
 * they subscribed, with each batch of changed views. A listener must not block (the watch loop
 * calls publish); one that throws does not stop the others.
 *
 * @module
 */

/** A set of listeners called with each published value. */
export class ChangeFeed<T> {
  #listeners = new Set<(value: T) => void>();
  #onError: (error: unknown) => void;

  /** A feed; `onError` hears a listener's exception (default: console.error). */
  constructor(options: { onError?: (error: unknown) => void } = {}) {
    this.#onError = options.onError ?? ((e) => console.error("change listener failed", e));
  }

  /** Subscribes; returns the function that unsubscribes. */
  subscribe(listener: (value: T) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Calls every listener with `value`. */
  publish(value: T): void {
    for (const l of [...this.#listeners]) {
      try {
        l(value);
      } catch (e) {
        this.#onError(e);
      }
    }
  }
}
