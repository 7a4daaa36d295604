/**
 * JSON log lines on stderr, one object per line, for what an operator needs to see: synced,
 * relisted and why, backing off and why, token reloaded. Values are passed through
 * {@linkcode redact} so a token or an Authorization header can never reach the log.
 *
 * @module
 */
import { isoTime } from "./iso_time.ts";

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** The accepted level names, in order of severity. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** Structured fields of one log line. */
export type LogFields = Record<string, unknown>;

/** A logger writing JSON lines at or above its level. */
export interface Logger {
  /** Whether a line at this level would be written. */
  enabled(level: LogLevel): boolean;
  /** Writes one line: `{"time","level","msg",...fields}`. */
  log(level: LogLevel, msg: string, fields?: LogFields): void;
}

const SECRET_KEY = /authorization|token|password|secret|bearer/i;

/** Replaces the values of keys that can carry credentials with "[redacted]", recursively. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 5 || value === null || typeof value !== "object") return value;
  if (value instanceof Error) return value.message;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) ? "[redacted]" : redact(v, depth + 1);
  }
  return out;
}

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Where lines go. Default: stderr. */
  write?: (line: string) => void;
}

/** Creates a logger that writes lines at `level` and above. */
export function createLogger(level: LogLevel, options: LoggerOptions = {}): Logger {
  const min = LOG_LEVELS.indexOf(level);
  const encoder = new TextEncoder();
  const write = options.write ??
    ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  return {
    enabled: (l) => LOG_LEVELS.indexOf(l) >= min,
    log(l, msg, fields = {}) {
      if (LOG_LEVELS.indexOf(l) < min) return;
      const f = redact(fields) as LogFields;
      write(JSON.stringify({ time: isoTime(Date.now()), level: l, msg, ...f }));
    },
  };
}

const CONSOLE_LEVELS = { debug: "debug", log: "info", info: "info", warn: "warn", error: "error" };

/**
 * Routes `console.*` into `logger`, so that what the runtime itself prints (e.g. Deno.serve's
 * warning about `request.signal` at shutdown) is a JSON line like every other.
 */
export function captureConsole(logger: Logger): void {
  const target = console as unknown as Record<string, (...args: unknown[]) => void>;
  for (const [method, level] of Object.entries(CONSOLE_LEVELS)) {
    target[method] = (...args: unknown[]) =>
      logger.log(
        level as LogLevel,
        args.map((a) => typeof a === "string" ? a : Deno.inspect(redact(a))).join(" "),
        { source: "runtime" },
      );
  }
}
