/**
 * Runs a Deno script inside a network namespace, as a client from outside the Pod: the hostile
 * client (tests/support/hostile_client.ts) for the HTTP-edge tests and the remote_flood bench,
 * or a script of a test's own.
 *
 * @module
 */
import type { PodNetwork } from "./netns.ts";
import { childEnv } from "./sidecar.ts";
import type { HostileRun } from "./hostile_client.ts";

const CLIENT = new URL("./hostile_client.ts", import.meta.url).pathname;

/** `deno run <flags> <script> <args>` inside the namespace; throws with its stderr on failure,
 * else returns the last line it printed, parsed as JSON. */
export async function runInNamespace<R>(
  net: PodNetwork,
  flags: string[],
  script: string,
  args: string[] = [],
): Promise<R> {
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", net.name, Deno.execPath(), "run", ...flags, script, ...args],
    env: childEnv(),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  if (!out.success) throw new Error(`${script} in ${net.name}: ${decode(out.stderr)}`);
  return JSON.parse(decode(out.stdout).trim().split("\n").pop()!);
}

/** The hostile client's run from inside the namespace: its result (the one JSON line). */
export function runHostile<R>(net: PodNetwork, run: HostileRun): Promise<R> {
  return runInNamespace<R>(net, ["--allow-net"], CLIENT, [JSON.stringify(run)]);
}
