/**
 * docs/migrating.md names, in each row's last column, the tests that pin the row (a letter for
 * the file, the test's name in quotes). This checks that every quoted name is a test of the file
 * its letter stands for, so a renamed or removed test cannot leave the guide pointing at nothing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { WATCH_TIMEOUT_RANGE_S } from "../../lib/reflector.ts";
import { PROBE_AFTER_MS } from "../../lib/watch_stream.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The letter → file legend, read from the guide's own sentence. */
function legend(doc: string): Map<string, string> {
  const out = new Map<string, string>();
  const para = doc.slice(doc.indexOf("Each row names the test"), doc.indexOf("\n\n|"));
  for (const m of para.matchAll(/`([A-Z])`\s+(?:is\s+)?`([^`]+)`/g)) out.set(m[1]!, m[2]!);
  return out;
}

/** Every (letter, quoted test name) in the table's last column. */
function references(doc: string): { letter: string; name: string; row: string }[] {
  const refs: { letter: string; name: string; row: string }[] = [];
  for (const line of doc.split("\n")) {
    if (!line.startsWith("| ") || line.startsWith("| ---")) continue;
    const cells = line.split(" | ");
    const last = cells[cells.length - 1]!;
    for (const m of last.matchAll(/\b([A-Z]) "([^"]+)"/g)) {
      refs.push({ letter: m[1]!, name: m[2]!, row: cells[0]!.slice(2, 60) });
    }
  }
  return refs;
}

Deno.test("every test the migration guide names exists in the file its letter stands for", async () => {
  const doc = await Deno.readTextFile(`${ROOT}docs/migrating.md`);
  const files = legend(doc);
  assert.ok(files.size >= 9, `the legend names ${files.size} files`);
  const refs = references(doc);
  assert.ok(refs.length >= 20, `the table names ${refs.length} tests`);
  const missing: string[] = [];
  for (const { letter, name, row } of refs) {
    const file = files.get(letter);
    if (!file) {
      missing.push(`${row}: letter ${letter} is not in the legend`);
      continue;
    }
    const text = await Deno.readTextFile(`${ROOT}${file}`);
    // Test names are string or template literals; the guide shortens some with "...", which
    // stands for any text (a file name, the rest of a long name).
    const pattern = name.split("...").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join('[^"`]*');
    if (!new RegExp(`["\`]${pattern}["\`]`).test(text)) {
      missing.push(`${row}: ${letter} (${file}) has no test "${name}"`);
    }
  }
  assert.deepEqual(missing, []);
});

Deno.test("the guide's API-requests row is the arithmetic of the constants it names", async () => {
  const doc = await Deno.readTextFile(`${ROOT}docs/migrating.md`);
  const row = doc.split("\n").find((l) => l.startsWith("| Requests to the API server"))!;
  assert.ok(row, "the row exists");
  const [minS, maxS] = WATCH_TIMEOUT_RANGE_S;
  const probeS = PROBE_AFTER_MS / 1000;
  // The API server sends a bookmark about every 60 s (client-go's watch cache); a probe follows
  // each 30 s of silence on the connection, so once or twice per bookmark gap, once for every
  // watch on it (lib/connection_liveness.ts).
  const BOOKMARK_S = 60;
  const watches = [3600 / maxS, 3600 / minS];
  const probes = [3600 / BOOKMARK_S, 3600 / probeS];
  const round10 = (n: number) => Math.round(n / 10) * 10;
  for (
    const phrase of [
      `${watches[0]}–${watches[1]} WATCH an hour`,
      `random ${minS}–${maxS} s timeout, \`WATCH_TIMEOUT_RANGE_S\` in \`lib/reflector.ts\``,
      `after each ${probeS} s without a byte (\`PROBE_AFTER_MS\` in \`lib/watch_stream.ts\`)`,
      `on the one HTTP/2 connection all its watches share`,
      `${probes[0]}–${probes[1]} an hour, however many watches`,
      `About ${round10(watches[0]! + probes[0]!)}–${
        round10(watches[1]! + probes[1]!)
      } an hour for one watched namespace`,
    ]
  ) assert.ok(row.includes(phrase), `the row says "${phrase}"`);
});
