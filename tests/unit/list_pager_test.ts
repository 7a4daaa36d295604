/** A whole list read page by page, as client-go's pager: pages where the watch cache does not
 * answer whole, one request at a specific resourceVersion, and a list that expires between pages
 * read again whole. */
import assert from "node:assert/strict";
import { ApiError } from "../../lib/api_error.ts";
import { LIST_PAGE_SIZE, listAll } from "../../lib/list_pager.ts";

const item = (name: string) => ({ metadata: { name } });
const page = (names: string[], rv: string, cont?: string) =>
  Response.json({ items: names.map(item), metadata: { resourceVersion: rv, continue: cont } });

/** A fake API server answering the scripted pages in turn, recording each request's query. */
function server(answers: Response[]) {
  const asked: Record<string, string>[] = [];
  const get = (params: Record<string, string>) => {
    asked.push(params);
    return Promise.resolve(answers.shift()!);
  };
  return { asked, get };
}

Deno.test("a list from resourceVersion 0 is read in pages and joined, at the list's resourceVersion", async () => {
  const s = server([page(["a", "b"], "10", "next"), page(["c"], "10")]);
  const list = await listAll(s.get, "0");
  assert.deepEqual(list.items.map((i) => i.metadata?.name), ["a", "b", "c"]);
  assert.equal(list.resourceVersion, "10");
  assert.deepEqual(s.asked, [
    { resourceVersion: "0", limit: String(LIST_PAGE_SIZE) },
    { continue: "next", limit: String(LIST_PAGE_SIZE) },
  ]);
});

Deno.test("a list at a specific resourceVersion is one request without a page limit, so the watch cache answers it", async () => {
  const s = server([page(["a"], "42")]);
  const list = await listAll(s.get, "42");
  assert.equal(list.resourceVersion, "42");
  assert.deepEqual(s.asked, [{ resourceVersion: "42" }]);
});

Deno.test("a list that expires between pages is read again whole, and the restart is reported", async () => {
  const gone = new Response(JSON.stringify({ kind: "Status", code: 410, reason: "Expired" }), {
    status: 410,
  });
  const s = server([page(["a"], "10", "next"), gone, page(["a", "b"], "12")]);
  let restarts = 0;
  const list = await listAll(s.get, "", { onRestart: () => restarts++ });
  assert.equal(restarts, 1);
  assert.deepEqual(list.items.map((i) => i.metadata?.name), ["a", "b"]);
  assert.equal(list.resourceVersion, "12");
  assert.deepEqual(s.asked[2], { resourceVersion: "" });
});

Deno.test("an error on the first page is the API server's error, not a restart", async () => {
  const s = server([new Response("{}", { status: 500 })]);
  let restarts = 0;
  await assert.rejects(
    listAll(s.get, "0", { onRestart: () => restarts++ }),
    (e) => e instanceof ApiError && e.status === 500,
  );
  assert.equal(restarts, 0);
});
