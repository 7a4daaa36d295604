/** Which Services are watched: named ones, every one, or those a selector picks, kept current by
 * the Service watch's store; and what is watched, in words. */
import assert from "node:assert/strict";
import { Selection } from "../../lib/selection.ts";

const service = (uid: string, name: string, rv = "1") => ({
  metadata: { uid, name, resourceVersion: rv },
});

Deno.test("names and all-services modes answer from the configuration, synced from the start", () => {
  const s = new Selection(
    new Map([["a", { kind: "names", names: ["web"] }], ["b", { kind: "all" }]] as const),
  );
  assert.equal(s.watches("a", "web"), true);
  assert.equal(s.watches("a", "db"), false);
  assert.equal(s.watches("b", "anything"), true);
  assert.equal(s.watches("c", "web"), false);
  assert.equal(s.watchesNamespace("c"), false);
  assert.deepEqual([s.synced("a"), s.synced("b")], [true, true]);
  assert.deepEqual([s.keepsEmpty("a"), s.keepsEmpty("b")], [true, false]);
  assert.equal(s.describe(), "a/web; every Service of b");
});

Deno.test("selector mode watches what the Service watch picked, and reports each name that came or went", () => {
  const s = new Selection(new Map([["ns", { kind: "selector", selector: "app=x" }]] as const));
  assert.equal(s.synced("ns"), false, "not known before the Service watch listed");
  const changes: { names: string[]; resourceVersion: string; relist: boolean }[] = [];
  const store = s.store("ns", (_ns, c) => changes.push({ ...c, names: [...c.names].sort() }));
  store.replace([service("1", "web"), service("2", "db")], "10");
  assert.equal(s.synced("ns"), true);
  assert.equal(s.watches("ns", "web"), true);
  store.apply("DELETED", service("2", "db", "11"));
  store.apply("ADDED", service("3", "cache", "12"));
  assert.equal(s.watches("ns", "db"), false);
  assert.deepEqual(s.names("ns").sort(), ["cache", "web"]);
  assert.deepEqual(changes, [
    { names: ["db", "web"], resourceVersion: "10", relist: true },
    { names: ["db"], resourceVersion: "11", relist: false },
    { names: ["cache"], resourceVersion: "12", relist: false },
  ]);
  assert.equal(s.resourceVersion("ns"), "12");
  assert.equal(s.describe("ns"), "Services of ns with app=x");
});

Deno.test("a long list of names is described in one readable line", () => {
  const names = Array.from({ length: 12 }, (_, i) => `s${i}`);
  const s = new Selection(new Map([["ns", { kind: "names", names }]] as const));
  assert.match(s.describe(), /^ns\/s0, .*ns\/s9 and 2 more$/);
});
