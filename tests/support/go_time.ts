/**
 * Go's own `time.Parse` with the Go kubernetes-pod-discovery's `lastUpdated` layout
 * (tests/support/go_time/main.go, built once per test run), so a test reads a time stamp exactly
 * as a Go client of that service does.
 *
 * @module
 */
import assert from "node:assert/strict";

const SOURCE = new URL("./go_time/main.go", import.meta.url).pathname;

/** Go's zero time (`time.Time{}`) in Unix seconds: what a parsed `0001-01-01T00:00:00+0000` is. */
export const GO_ZERO_UNIX = -62135596800;

let built: Promise<string> | undefined;

function goTimeParser(): Promise<string> {
  return built ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "kpd-go-time-" });
    const out = await new Deno.Command("go", {
      args: ["build", "-o", `${dir}/go_time`, SOURCE],
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return `${dir}/go_time`;
  })();
}

/** Each time stamp parsed by Go: Unix seconds, or the parse error. */
export async function parseWithGo(stamps: string[]): Promise<(number | string)[]> {
  const child = new Deno.Command(await goTimeParser(), { stdin: "piped", stdout: "piped" })
    .spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stamps.map((s) => s + "\n").join("")));
  await w.close();
  const out = new TextDecoder().decode((await child.output()).stdout).trim().split("\n");
  return out.map((l) => /^-?\d+$/.test(l) ? Number(l) : l);
}
