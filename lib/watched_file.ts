/**
 * A file whose text is read once per change, not once per request: its identity (size,
 * modification time, inode) is looked at no more often than a given interval, and the file is
 * read again only when that changed or {@linkcode WatchedFile.invalidate} was called. Used for
 * the kubeconfig's CA, client certificate and key (rotated on disk by cert-manager or a
 * kubelet-like agent) and its tokenFile (re-read at most once a minute and after a 401, as
 * client-go does). A file that cannot be read, or is empty, after it once was read keeps its
 * last text (it may be mid-rewrite); one never read is an error naming the file and the field, never its content.
 *
 * @module
 */

/** Options of {@linkcode WatchedFile}. */
export interface WatchedFileOptions {
  /** Look at the file no more often than this. */
  intervalMs: number;
  /** Clock. Default: `Date.now`. */
  now?: () => number;
}

/** One file, read again when it changes. */
export class WatchedFile {
  readonly path: string;
  #what: string;
  #o: WatchedFileOptions;
  #now: () => number;
  #text?: string;
  #identity = "";
  #checkedAt = -Infinity;
  /** Times the file was read. */
  reads = 0;

  /** `what` names the file's role for messages, e.g. `client-key of user "u" in kubeconfig x`. */
  constructor(path: string, what: string, options: WatchedFileOptions) {
    this.path = path;
    this.#what = what;
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The file's text: the last read one, or read again if the file changed. */
  text(): string {
    const now = this.#now();
    if (this.#text !== undefined && now - this.#checkedAt < this.#o.intervalMs) return this.#text;
    this.#checkedAt = now;
    let identity: string;
    try {
      const s = Deno.statSync(this.path);
      identity = `${s.size}:${s.mtime?.getTime()}:${s.ino}`;
      if (this.#text !== undefined && identity === this.#identity) return this.#text;
      const text = Deno.readTextFileSync(this.path);
      this.reads++;
      if (text === "" && this.#text !== undefined) {
        // Truncated and not yet written (`kubectl create token sa > token`): keep the last text
        // and look again at the next call, not an interval later.
        this.#checkedAt = -Infinity;
        return this.#text;
      }
      this.#text = text;
      this.#identity = identity;
      return text;
    } catch (e) {
      if (this.#text !== undefined) return this.#text;
      throw new Error(`Cannot read ${this.path} (${this.#what}): ${(e as Error).message}`);
    }
  }

  /** The next {@linkcode text} looks at the file whatever the interval (after a 401). */
  invalidate(): void {
    this.#checkedAt = -Infinity;
  }
}
