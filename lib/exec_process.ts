/**
 * Runs a kubeconfig's credential plugin bounded in time and output (lib/exec_credential.ts says
 * what to make of its answer). A plugin is someone else's program: it may wait for a login it
 * cannot prompt for, ignore SIGTERM, start a child that keeps its output pipe open after it was
 * killed, or print without end. So it is sent SIGTERM at the timeout (or when the sidecar stops)
 * and SIGKILL soon after, its output is read up to a cap, and once it has exited nothing waits
 * long for a pipe that a process it left behind still holds. It stays in the sidecar's process
 * group, so a Ctrl-C in the terminal reaches it too.
 *
 * @module
 */

/** An ExecCredential, even with a certificate chain and key, is a few KiB; a plugin printing
 * more than this has gone wrong, and the rest is not held in memory. */
export const MAX_STDOUT_BYTES = 1 << 20;

/** Of stderr only the last line is used (in the error); this much of its end is kept. */
export const STDERR_TAIL_BYTES = 16 << 10;

/** After SIGTERM the group has this long to exit before SIGKILL. */
export const KILL_GRACE_MS = 1_000;

/** After the plugin exits its output is read this much longer: what it wrote is in the pipe at
 * once, unless a process it started still holds the pipe open, which is not waited for. */
export const AFTER_EXIT_MS = 1_000;

/** Options of {@linkcode runPlugin}. */
export interface RunPluginOptions {
  /** Its arguments. */
  args: string[];
  /** Its whole environment. */
  env: Record<string, string>;
  /** Killed when it has not exited after this long. */
  timeoutMs: number;
  /** Killed when this aborts (the sidecar stops). */
  signal?: AbortSignal;
}

/** How a run ended. */
export interface PluginOutput {
  /** Exit code (with `signal`: 128 + its number). */
  code: number;
  /** The signal that ended it, if any. */
  signal: Deno.Signal | null;
  /** Its stdout, at most {@linkcode MAX_STDOUT_BYTES}. */
  stdout: Uint8Array;
  /** The end of its stderr. */
  stderr: string;
  /** Killed for not exiting within the timeout. */
  timedOut: boolean;
  /** Killed for printing more than {@linkcode MAX_STDOUT_BYTES}. */
  tooLong: boolean;
}

/** Runs `command`; throws as `Deno.Command#spawn` does when it cannot be started. */
export async function runPlugin(command: string, options: RunPluginOptions): Promise<PluginOutput> {
  const child = new Deno.Command(command, {
    args: options.args,
    clearEnv: true,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch {
      // Exited already.
    }
  };
  let timedOut = false;
  let tooLong = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    kill("SIGTERM");
    killTimer ??= setTimeout(() => kill("SIGKILL"), KILL_GRACE_MS);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    stop();
  }, options.timeoutMs);
  options.signal?.addEventListener("abort", stop);
  if (options.signal?.aborted) stop();
  const stdout = readCapped(child.stdout, MAX_STDOUT_BYTES, "head", () => {
    tooLong = true;
    stop();
  });
  const stderr = readCapped(child.stderr, STDERR_TAIL_BYTES, "tail");
  try {
    const status = await child.status;
    let afterExit: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => afterExit = setTimeout(resolve, AFTER_EXIT_MS));
    await Promise.race([Promise.all([stdout.done, stderr.done]), late]);
    clearTimeout(afterExit);
    return {
      code: status.code,
      signal: status.signal,
      stdout: stdout.bytes(),
      stderr: new TextDecoder().decode(stderr.bytes()),
      timedOut,
      tooLong,
    };
  } finally {
    options.signal?.removeEventListener("abort", stop);
    clearTimeout(timer);
    clearTimeout(killTimer);
    await Promise.all([stdout.cancel(), stderr.cancel()]);
  }
}

/** A stream read in the background, keeping its first (`head`) or last (`tail`) `cap` bytes;
 * `over` is called once when a `head` read goes past the cap, and reading stops there. */
function readCapped(
  stream: ReadableStream<Uint8Array>,
  cap: number,
  keep: "head" | "tail",
  over?: () => void,
): { done: Promise<void>; bytes: () => Uint8Array; cancel: () => Promise<void> } {
  const reader = stream.getReader();
  let buf = new Uint8Array(0);
  let eof = false;
  const append = (chunk: Uint8Array) => {
    const next = new Uint8Array(buf.length + chunk.length);
    next.set(buf);
    next.set(chunk, buf.length);
    buf = keep === "tail" && next.length > cap ? next.slice(next.length - cap) : next;
  };
  const done = (async () => {
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) {
          eof = true;
          break;
        }
        append(value);
        if (keep === "head" && buf.length > cap) {
          buf = buf.slice(0, cap);
          over?.();
          break;
        }
      }
    } catch {
      // The pipe failed: what was read is what there is.
    }
  })();
  return {
    done,
    bytes: () => buf,
    async cancel() {
      // Closes the pipe unless it was read to its end (which closed it).
      if (!eof) await reader.cancel().catch(() => {});
      await done;
    },
  };
}
