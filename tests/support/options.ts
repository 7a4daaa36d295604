/**
 * The options every test against a real control plane or a real process shares, written once.
 * Those tests hold child processes, watches and sockets open across steps, which Deno's op and
 * resource sanitizers would report as leaks.
 *
 * @module
 */

/** `Deno.test` options of a test that runs against real processes and sockets. */
export const LIVE_TEST = { sanitizeOps: false, sanitizeResources: false } as const;
