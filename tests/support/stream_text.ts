/**
 * Reading a streamed response's text piece by piece, for the unit tests of SSE streams served by
 * a handler without a socket (tests/unit/sse_test.ts, tests/unit/self_view_test.ts).
 *
 * @module
 */

/** A reader of `resp`'s body: each call reads until `until` matches the text read since the
 * last call (or, with `"end"`, until the stream ends) and returns that text; an error when that
 * does not happen within `timeoutMs`. */
export function streamReader(resp: Response) {
  const r = resp.body?.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  return async (until: RegExp | "end", timeoutMs = 2000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    while (until === "end" || !until.test(buf)) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const next = await Promise.race([
        r!.read(),
        new Promise<"timeout">((res) =>
          timer = setTimeout(() => res("timeout"), deadline - Date.now())
        ),
      ]).finally(() => clearTimeout(timer));
      if (next === "timeout") throw new Error(`no ${until} in time; got ${JSON.stringify(buf)}`);
      if (next.done) break;
      buf += next.value;
    }
    const out = buf;
    buf = "";
    return out;
  };
}
