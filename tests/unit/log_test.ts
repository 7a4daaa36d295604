/** The JSON log: what the runtime prints through console.* becomes a JSON line too. */
import assert from "node:assert/strict";
import { captureConsole, createLogger } from "../../lib/log.ts";

Deno.test("after captureConsole, console.warn and console.error write JSON lines through the logger", () => {
  const saved = { warn: console.warn, error: console.error, log: console.log };
  const lines: string[] = [];
  try {
    captureConsole(createLogger("info", { write: (l) => lines.push(l) }));
    console.warn("Deno.serve: request.signal aborts on successful responses");
    console.error("boom", { token: "secret-value" });
    console.debug("below the level");
  } finally {
    Object.assign(console, saved);
  }
  assert.equal(lines.length, 2);
  const [warn, error] = lines.map((l) => JSON.parse(l));
  assert.equal(warn.level, "warn");
  assert.match(warn.msg, /request.signal/);
  assert.equal(warn.source, "runtime");
  assert.equal(error.level, "error");
  assert.match(error.msg, /^boom/);
  assert.doesNotMatch(lines.join("\n"), /secret-value/, "a token never reaches the log");
});
