/** lib/watched_file.ts: a file read once per change, looked at no more often than its interval. */
import assert from "node:assert/strict";
import { WatchedFile } from "../../lib/watched_file.ts";

Deno.test("a watched file is read once per change, however often its text is asked for", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/client.crt`;
    await Deno.writeTextFile(path, "one");
    const clock = { t: 0 };
    const f = new WatchedFile(path, "client-certificate", {
      intervalMs: 1_000,
      now: () => clock.t,
    });
    for (let i = 0; i < 100; i++, clock.t += 50) assert.equal(f.text(), "one");
    assert.equal(f.reads, 1);
    await Deno.writeTextFile(`${path}.tmp`, "two!");
    await Deno.rename(`${path}.tmp`, path);
    clock.t += 1_000;
    assert.equal(f.text(), "two!");
    assert.equal(f.reads, 2);
    await Deno.writeTextFile(path, "three");
    assert.equal(f.text(), "two!", "not looked at again within the interval");
    f.invalidate();
    assert.equal(f.text(), "three", "invalidate() looks at once");
    await Deno.remove(path);
    clock.t += 5_000;
    assert.equal(f.text(), "three", "a file gone mid-rewrite keeps its last text");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a watched file never read is an error naming the file and its role", () => {
  const f = new WatchedFile("/nonexistent/token", 'tokenFile of user "u"', { intervalMs: 1 });
  assert.throws(
    () => f.text(),
    /^Error: Cannot read \/nonexistent\/token \(tokenFile of user "u"\): /,
  );
});

Deno.test("a watched file found empty mid-rewrite (truncated, not yet written) keeps its last text and is looked at again at once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/token`;
    await Deno.writeTextFile(path, "old-token");
    const clock = { t: 0 };
    const f = new WatchedFile(path, "tokenFile", { intervalMs: 60_000, now: () => clock.t });
    assert.equal(f.text(), "old-token");
    // `kubectl create token sa > token`: the shell truncates, then the token is written.
    await Deno.writeTextFile(path, "");
    f.invalidate();
    assert.equal(f.text(), "old-token", "no request goes out without a token");
    await Deno.writeTextFile(path, "new-token");
    clock.t += 1;
    assert.equal(f.text(), "new-token", "read as soon as it is written, not a minute later");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
