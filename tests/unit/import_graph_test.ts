/** The layering of lib/ stays checkable: tools/import_graph.ts reads every kind of relative
 * import and names each cycle, and lib/ has none. */
import assert from "node:assert/strict";
import { findCycles, importGraph } from "../../tools/import_graph.ts";

Deno.test("lib/ has no import cycle, type-only imports included", () => {
  const graph = importGraph(new URL("../../lib", import.meta.url).pathname);
  assert.ok(graph.size > 40, `read ${graph.size} files`);
  assert.ok(graph.get("routes/table.ts")!.includes("routes/v1.ts"), "reads lib/routes/ too");
  assert.deepEqual(findCycles(graph), []);
});

Deno.test("the graph reads static, type-only, re-exported and dynamic imports, and names every cycle", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.mkdirSync(`${dir}/sub`);
    Deno.writeTextFileSync(`${dir}/a.ts`, 'import { b } from "./b.ts";\nexport const a = b;\n');
    Deno.writeTextFileSync(`${dir}/b.ts`, 'import type {\n  C,\n} from "./sub/c.ts";\n');
    Deno.writeTextFileSync(`${dir}/sub/c.ts`, 'export { a } from "../a.ts";\n');
    Deno.writeTextFileSync(`${dir}/d.ts`, 'const m = await import("./e.ts");\n');
    Deno.writeTextFileSync(
      `${dir}/e.ts`,
      'import "node:assert";\nimport { x } from "../out.ts";\n',
    );
    const graph = importGraph(dir);
    assert.deepEqual(Object.fromEntries(graph), {
      "a.ts": ["b.ts"],
      "b.ts": ["sub/c.ts"],
      "d.ts": ["e.ts"],
      "e.ts": [],
      "sub/c.ts": ["a.ts"],
    });
    assert.deepEqual(findCycles(graph), [["a.ts", "b.ts", "sub/c.ts"]]);
    graph.set("e.ts", ["e.ts"]);
    assert.deepEqual(findCycles(graph), [["a.ts", "b.ts", "sub/c.ts"], ["e.ts"]]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
