import assert from "node:assert/strict";
import { EndpointCache } from "../../lib/cache.ts";
import { HealthRegistry, WatchHealth } from "../../lib/health.ts";
import { createHandler } from "../../lib/routes/table.ts";
import { localClients, parseRange } from "../../lib/access.ts";
import { sliceFor } from "../support/slices.ts";

const web = { namespace: "ns", name: "web" };

function setup() {
  const cache = new EndpointCache(new Map([["ns", { kind: "names", names: ["web"] }]]));
  const health = new HealthRegistry();
  const watch = new WatchHealth({ namespace: "ns", resource: "endpointslices" });
  health.add(watch);
  const handler = createHandler(cache, { primary: web, health });
  const get = (path: string, headers: HeadersInit = {}, method = "GET") =>
    handler(new Request(`http://localhost${path}`, { method, headers })) as Response;
  const slices = cache.sliceStore("ns");
  // As the reflector does: a complete list makes the watch healthy.
  const store = {
    ...slices,
    replace: (...a: Parameters<typeof slices.replace>) => {
      slices.replace(...a);
      watch.heard();
    },
  };
  return { cache, get, store, watch };
}

Deno.test("before the first list /endpoints answers 503 with a JSON error, not an empty object", async () => {
  const { get } = setup();
  const r = get("/endpoints");
  assert.equal(r.status, 503);
  const body = await r.json();
  assert.match(body.error, /not ready/);
  assert.equal(get("/readyz").status, 503);
  await get("/readyz").body?.cancel();
  assert.equal(await get("/health").text(), "ok");
  assert.equal(await get("/livez").text(), "ok");
});

Deno.test("after the list /endpoints serves the v1 shape and /readyz turns 200", async () => {
  const { store, get } = setup();
  store.replace(
    [sliceFor("web", ["10.0.0.1"], "5"), sliceFor("other", ["10.9.9.9"], "6")],
    "9",
  );
  const r = get("/endpoints/");
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.subsets[0].addresses[0].ip, "10.0.0.1");
  assert.equal(body.subsets.length, 1);
  assert.equal(r.headers.get("X-Discovery-Index"), "9");
  assert.equal(await get("/readyz").text(), "ok");
  const lu = await get("/endpoints/last_updated").json();
  assert.ok(!Number.isNaN(Date.parse(lu.lastUpdated)));
});

Deno.test("a watched Service with no slices is empty and ready, and filled when it appears", async () => {
  const { store, get } = setup();
  store.replace([], "3");
  assert.equal((await get("/endpoints").json()).subsets, null, "null, as the Go service");
  store.apply("ADDED", sliceFor("web", ["10.0.0.7"], "4"));
  assert.equal((await get("/endpoints").json()).subsets[0].addresses[0].ip, "10.0.0.7");
});

Deno.test("If-None-Match with the current ETag answers 304; a change makes a new ETag", async () => {
  const { store, get } = setup();
  store.replace([sliceFor("web", ["10.0.0.1"], "5")], "5");
  const first = get("/endpoints");
  const etag = first.headers.get("ETag")!;
  await first.body?.cancel();
  assert.equal(get("/endpoints", { "If-None-Match": etag }).status, 304);
  store.apply("MODIFIED", sliceFor("web", ["10.0.0.2"], "8"));
  const after = get("/endpoints", { "If-None-Match": etag });
  assert.equal(after.status, 200);
  assert.notEqual(after.headers.get("ETag"), etag);
  await after.body?.cancel();
});

Deno.test("a slice event that changes no endpoint keeps the view, its ETag and its body", () => {
  const { cache, store } = setup();
  store.replace([sliceFor("web", ["10.0.0.1"], "5")], "5");
  const before = cache.view("ns", "web")!;
  store.apply("MODIFIED", sliceFor("web", ["10.0.0.1"], "6"));
  assert.equal(cache.view("ns", "web"), before);
});

Deno.test("a DELETED slice drops its endpoints", async () => {
  const { store, get } = setup();
  store.replace([sliceFor("web", ["10.0.0.1"], "5")], "5");
  store.apply("DELETED", sliceFor("web", ["10.0.0.1"], "6"));
  assert.equal((await get("/endpoints").json()).subsets, null);
});

Deno.test("unknown paths get 404 JSON with any method and wrong methods on the added routes 405 with Allow", async () => {
  const { get } = setup();
  for (const method of ["GET", "POST", "DELETE", "PROPFIND"]) {
    const nf = get("/nope", {}, method);
    assert.equal(nf.status, 404, method);
    assert.match((await nf.json()).error, /no route "\/nope"/);
  }
  const na = get("/readyz", {}, "POST");
  assert.equal(na.status, 405);
  assert.equal(na.headers.get("Allow"), "GET, HEAD");
  await na.body?.cancel();
});

// ---------------------------------------------------------------------------------------------
// The Go service's ServeMux routes, the Go time stamp and the loopback policy (issue 9)

/** A request as Deno.serve hands it over: `url` as sent (a Request would resolve `..`). */
function rawRequest(target: string, method = "GET"): Request {
  return { url: `http://x${target}`, method, headers: new Headers({ host: "x" }) } as Request;
}

/** The handler's second argument, as Deno.serve passes it, for a client at `hostname`. */
function from(hostname: string): Deno.ServeHandlerInfo<Deno.NetAddr> {
  return {
    remoteAddr: { transport: "tcp", hostname, port: 40000 },
    completed: Promise.resolve(),
  };
}

function synced() {
  const s = setup();
  s.store.replace([sliceFor("web", ["10.0.0.1"], "5")], "5");
  const handler = createHandler(s.cache, { primary: web, health: healthOf(s.watch) });
  const call = (path: string, init: { method?: string; client?: string } = {}) =>
    handler(
      rawRequest(path, init.method),
      from(init.client ?? "127.0.0.1"),
    ) as Response;
  return { ...s, call };
}

function healthOf(watch: WatchHealth): HealthRegistry {
  const h = new HealthRegistry();
  h.add(watch);
  return h;
}

Deno.test("every seed route answers with and without its trailing slash and on its subtree, as Go's ServeMux", async () => {
  const { call } = synced();
  for (const path of ["/endpoints", "/endpoints/", "/endpoints/foo", "/endpoints/a/b"]) {
    const r = call(path);
    assert.equal(r.status, 200, path);
    assert.match(r.headers.get("Content-Type")!, /^application\/json/, path);
    assert.equal((await r.json()).kind, "Endpoints", path);
  }
  for (
    const path of [
      "/endpoints/last_updated",
      "/endpoints/last_updated/",
      "/endpoints/last_updated/x",
    ]
  ) {
    const r = call(path);
    assert.equal(r.status, 200, path);
    assert.match(
      await r.text(),
      /^\{"lastUpdated": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000"\}$/,
      path,
    );
  }
  for (const path of ["/health", "/health/", "/health/deep"]) {
    const r = call(path);
    assert.equal(r.status, 200, path);
    assert.equal(await r.text(), "ok", path);
  }
});

Deno.test("the seed routes accept any method as Go did; the added routes keep GET and HEAD", async () => {
  const { call } = synced();
  for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
    const e = call("/endpoints/", { method });
    assert.equal(e.status, 200, method);
    assert.equal((await e.json()).kind, "Endpoints");
    const h = call("/health", { method });
    assert.equal(await h.text(), "ok");
    const l = call("/endpoints/last_updated/", { method });
    assert.equal(l.status, 200);
    await l.body?.cancel();
  }
  for (const path of ["/livez", "/readyz", "/metrics", "/v1/services"]) {
    const r = call(path, { method: "POST" });
    assert.equal(r.status, 405, path);
    assert.equal(r.headers.get("Allow"), "GET, HEAD");
    await r.body?.cancel();
  }
});

Deno.test("lastUpdated is the Go layout in UTC: Go's zero time before the first list, now while the watch is healthy, frozen once it is broken", async () => {
  let now = Date.UTC(2026, 10, 27, 13, 25, 46, 475);
  const cache = new EndpointCache(new Map([["ns", { kind: "names", names: ["web"] }]]));
  const watch = new WatchHealth({ namespace: "ns", resource: "endpointslices" }, () => now);
  const handler = createHandler(cache, { primary: web, health: healthOf(watch), now: () => now });
  const get = async () => {
    const r = await handler(new Request("http://localhost/endpoints/last_updated/"));
    return { r, text: await r.text() };
  };
  const never = await get();
  assert.equal(never.r.status, 200, "before the first list: Go's zero time, not an error");
  assert.equal(never.text, '{"lastUpdated": "0001-01-01T00:00:00+0000"}');
  assert.equal(never.r.headers.get("X-Discovery-Age-Seconds"), null);
  cache.sliceStore("ns").replace([sliceFor("web", ["10.0.0.1"], "5")], "5");
  watch.heard();
  const first = await get();
  assert.equal(first.text, '{"lastUpdated": "2026-11-27T13:25:46+0000"}');
  assert.match(first.r.headers.get("Content-Type")!, /^application\/json/);
  now += 60_000;
  assert.equal(
    (await get()).text,
    '{"lastUpdated": "2026-11-27T13:26:46+0000"}',
    "a quiet healthy watch stays current",
  );
  watch.broken("connection reset");
  now += 120_000;
  const frozen = await get();
  assert.equal(frozen.text, '{"lastUpdated": "2026-11-27T13:26:46+0000"}');
  assert.equal(frozen.r.headers.get("X-Discovery-Age-Seconds"), "120");
  watch.heard();
  assert.equal((await get()).text, '{"lastUpdated": "2026-11-27T13:28:46+0000"}');
});

Deno.test("a client outside the pod gets the health routes and /metrics, and 403 JSON naming the setting for the data", async () => {
  const { call } = synced();
  // 127.0.0.6 is where Istio's inbound passthrough connects from: another Pod's traffic.
  for (const client of ["10.213.0.2", "fd00::2", "::ffff:10.213.0.2", "127.0.0.6", "127.4.5.6"]) {
    for (const path of ["/health", "/health/", "/livez", "/readyz", "/metrics"]) {
      const r = call(path, { client });
      assert.equal(r.status, 200, `${client} ${path}`);
      await r.body?.cancel();
    }
    for (
      const path of [
        "/endpoints",
        "/endpoints/",
        "/endpoints/foo",
        "/endpoints/last_updated/",
        "/v1/services",
        "/v1/services/ns/web",
        "/nope",
      ]
    ) {
      const r = call(path, { client });
      assert.equal(r.status, 403, `${client} ${path}`);
      assert.match(r.headers.get("Content-Type")!, /^application\/json/);
      assert.match((await r.json()).error, /KUBERNETES_POD_DISCOVERY_ALLOW_REMOTE_DATA=true/);
    }
  }
  for (const client of ["127.0.0.1", "::1", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"]) {
    const r = call("/endpoints/", { client });
    assert.equal(r.status, 200, client);
    await r.body?.cancel();
  }
});

Deno.test("with allowRemoteData a client outside the pod reads the data too", async () => {
  const s = setup();
  s.store.replace([sliceFor("web", ["10.0.0.1"], "5")], "5");
  const handler = createHandler(s.cache, {
    primary: web,
    health: healthOf(s.watch),
    allowRemoteData: true,
  });
  const r = await handler(new Request("http://localhost/endpoints/"), from("10.213.0.2"));
  assert.equal(r.status, 200);
  await r.body?.cancel();
});

// ---------------------------------------------------------------------------------------------
// One reading of the request target (issue 16, issue 21 items 1 and 2)

Deno.test("an unclean path answers 301 to the path Go's ServeMux cleans it to, never the data", async () => {
  const { call } = synced();
  for (
    const [path, location] of [
      ["/endpoints/../health/", "/health/"],
      ["/endpoints/../x", "/x"],
      ["/endpoints/./", "/endpoints/"],
      ["/health/../endpoints/", "/endpoints/"],
      ["/endpoints/%2e%2e/livez", "/livez"],
      ["//endpoints", "/endpoints"],
    ]
  ) {
    for (const client of ["127.0.0.1", "10.213.0.2"]) {
      const r = call(path!, { client });
      assert.equal(r.status, 301, `${client} ${path}`);
      assert.equal(r.headers.get("Location"), location, path);
      assert.equal(await r.text(), "", path);
    }
  }
});

Deno.test("the Host header never changes the route and never makes a 500", async () => {
  const { cache, watch } = synced();
  const handler = createHandler(cache, { primary: web, health: healthOf(watch) });
  // What Deno.serve builds for `GET /v1/services` with `Host: h/p`: http://h/p/v1/services.
  const r = await handler(
    new Request("http://h/p/v1/services?state=ready", { headers: { host: "h/p" } }),
    from("127.0.0.1"),
  );
  assert.equal(r.status, 200);
  assert.equal((await r.json()).services.length, 1);
  const e = await handler(new Request("http://x/endpoints", { headers: { host: "x" } }));
  assert.equal(e.status, 200);
  await e.body?.cancel();
  const bad = await handler(new Request("http://x/%zz", { headers: { host: "x" } }));
  assert.equal(bad.status, 400);
  await bad.body?.cancel();
});

Deno.test("the probe listener's handler serves the health routes under any spelling and 404 for everything else", async () => {
  const s = synced();
  const probe = createHandler(s.cache, {
    primary: web,
    health: healthOf(s.watch),
    healthOnly: true,
  });
  const call = (path: string, method = "GET") =>
    probe(rawRequest(path, method), from("127.0.0.1")) as Response;
  for (const path of ["/livez", "/readyz", "/health", "/health/", "/health/x"]) {
    const r = call(path);
    assert.equal(r.status, 200, path);
    assert.equal(await r.text(), "ok", path);
  }
  for (const [path, location] of [["/endpoints/../livez", "/livez"], ["//health", "/health"]]) {
    const r = call(path!);
    assert.equal(r.status, 301, path);
    assert.equal(r.headers.get("Location"), location);
  }
  for (
    const path of [
      "/endpoints",
      "/endpoints/../endpoints/",
      "/endpoints/%2e%2e/v1/services",
      "/livez/../endpoints",
      "/metrics",
      "/v1/services",
      "/x",
      "/%65ndpoints",
    ]
  ) {
    for (const method of ["GET", "POST"]) {
      const r = call(path, method);
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.doesNotMatch(await r.text(), /10\.0\.0\.1|Endpoints/, path);
    }
  }
});

Deno.test("/readyz gives the reason to the Pod's own clients and only the status to others", async () => {
  const s = setup();
  const handler = createHandler(s.cache, { primary: web, health: healthOf(s.watch) });
  const local = await handler(new Request("http://x/readyz"), from("127.0.0.1"));
  assert.equal(local.status, 503);
  assert.match((await local.json()).error, /first complete list/);
  for (const client of ["10.213.0.2", "127.0.0.6"]) {
    const remote = await handler(new Request("http://x/readyz"), from(client));
    assert.equal(remote.status, 503);
    assert.deepEqual(await remote.json(), { error: "not ready", status: 503 });
  }
});

Deno.test("--local-clients widens who counts as the Pod's own: a mesh's 127.0.0.6, a CIDR", async () => {
  const s = setup();
  s.store.replace([sliceFor("web", ["10.0.0.1"], "5")], "5");
  const handler = createHandler(s.cache, {
    primary: web,
    health: healthOf(s.watch),
    isLocalClient: localClients([parseRange("127.0.0.0/8")!, parseRange("fd00:1::/32")!]),
  });
  for (const [client, status] of [["127.0.0.6", 200], ["fd00:1::9", 200], ["fd00:2::9", 403]]) {
    const r = await handler(new Request("http://x/endpoints"), from(client as string));
    assert.equal(r.status, status, client as string);
    await r.body?.cancel();
  }
});
