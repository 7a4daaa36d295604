/**
 * The import graph of `lib/`: which file imports which (type-only imports included, since a
 * cycle of types is still two files that cannot be read apart), printed one file a line, and
 * any cycle named. Exits 1 on a cycle, so the layering in STYLE.md stays checkable:
 * `tools/deno run --allow-read tools/import_graph.ts [DIR]` (default `lib`).
 *
 * @module
 */

/** Each file (relative to the root) with the files it imports, sorted. */
export type ImportGraph = Map<string, string[]>;

/** Relative specifiers: `from "./x.ts"`, `import("../y.ts")`, `export ... from`. */
const SPECIFIER = /(?:\bfrom\s+|\bimport\s*\(\s*)"(\.\.?\/[^"]+)"/g;

/** Reads every `.ts` file below `root` and the edges between them (imports leaving `root` are
 * left out). */
export function importGraph(root: string): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of tsFiles(root, "")) {
    const text = Deno.readTextFileSync(`${root}/${file}`);
    const targets = new Set<string>();
    for (const m of text.matchAll(SPECIFIER)) {
      const target = normalize(`${dirOf(file)}${m[1]}`);
      if (!target.startsWith("../")) targets.add(target);
    }
    graph.set(file, [...targets].sort());
  }
  return new Map([...graph].sort(([a], [b]) => a < b ? -1 : 1));
}

/** The cycles of a graph: each strongly connected set of two or more files (or a file that
 * imports itself), sorted. Empty when the graph has none. */
export function findCycles(graph: ImportGraph): string[][] {
  // Tarjan's strongly connected components.
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out.sort((a, b) => a[0]! < b[0]! ? -1 : 1);
}

function tsFiles(root: string, sub: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${root}/${sub}`)) {
    const path = `${sub}${e.name}`;
    if (e.isDirectory) out.push(...tsFiles(root, `${path}/`));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

function dirOf(file: string): string {
  const i = file.lastIndexOf("/");
  return i < 0 ? "" : file.slice(0, i + 1);
}

/** `a/./b/../c.ts` as `a/c.ts`; a path above the root keeps its leading `../`. */
function normalize(path: string): string {
  const parts: string[] = [];
  for (const p of path.split("/")) {
    if (p === "." || p === "") continue;
    if (p === ".." && parts.length && parts[parts.length - 1] !== "..") parts.pop();
    else parts.push(p);
  }
  return parts.join("/");
}

if (import.meta.main) {
  const root = Deno.args[0] ?? "lib";
  const graph = importGraph(root);
  for (const [file, targets] of graph) console.log(`${file} -> ${targets.join(", ") || "-"}`);
  const cycles = findCycles(graph);
  for (const c of cycles) console.error(`cycle: ${c.join(" <-> ")}`);
  if (cycles.length) Deno.exit(1);
  console.log(`no cycle in ${graph.size} files of ${root}/`);
}
