/**
 * Waiting in tests: poll a condition until it holds or a deadline passes, sleep, and the unique
 * DNS-1123 names that keep tests from sharing objects.
 *
 * @module
 */

/** Options of {@linkcode waitFor}. */
export interface WaitOptions {
  /** Give up after this long (default 20000 ms). */
  timeoutMs?: number;
  /** Poll interval (default 50 ms). */
  intervalMs?: number;
  /** What is awaited, for the timeout error. */
  message?: string;
}

/**
 * Polls `fn` until it returns something other than undefined or false, and returns that; a throw
 * counts as "not yet" and is reported on timeout.
 */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false>,
  options: WaitOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const intervalMs = options.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (true) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const what = options.message ?? "condition";
      const cause = lastError === undefined
        ? ""
        : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`, {
        cause: lastError,
      });
    }
    await sleep(intervalMs);
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A unique DNS-1123 label `${prefix}-${random}`: lowercase, at most 63 characters. */
export function uniqueName(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  const suffix = Array.from(bytes, (b) => (b % 36).toString(36)).join("");
  const clean = prefix.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "") ||
    "x";
  return `${clean.slice(0, 63 - suffix.length - 1).replace(/-+$/, "")}-${suffix}`;
}
