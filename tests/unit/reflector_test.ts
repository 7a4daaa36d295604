/**
 * The reflector on a scripted API server: a fake connection answers each request from a script
 * (a list page, a watch stream that sends events and then closes, hangs or breaks, or an error
 * Status), sleeps are recorded instead of waited, and the tests read what the store saw, what
 * was requested and what was waited, step by step.
 */
import assert from "node:assert/strict";
import { Backoff } from "../../lib/backoff.ts";
import { ConfigError, loadConfig } from "../../lib/config.ts";
import type { KubeConnection } from "../../lib/kube_connection.ts";
import type { LogFields, Logger, LogLevel } from "../../lib/log.ts";
import { BACKOFF_INITIAL_MS, BACKOFF_MAX_MS } from "../../lib/backoff.ts";
import { Reflector, type ReflectorOptions } from "../../lib/reflector.ts";
import type { KubeItem, ReflectorStore } from "../../lib/store.ts";

type Ev = { type: string; object: KubeItem & Record<string, unknown> };
/** How a scripted watch stream ends after its events. */
type End = "close" | "hang" | "reset";
/** One scripted answer: a function of the request's URL. */
type Answer = (url: URL, signal?: AbortSignal | null) => Response | Promise<Response>;

const obj = (name: string, rv: string) => ({
  metadata: { name, namespace: "ns", resourceVersion: rv },
});
const added = (name: string, rv: string): Ev => ({ type: "ADDED", object: obj(name, rv) });
const modified = (name: string, rv: string): Ev => ({ type: "MODIFIED", object: obj(name, rv) });
const bookmark = (rv: string, end = false): Ev => ({
  type: "BOOKMARK",
  object: {
    metadata: {
      resourceVersion: rv,
      annotations: end ? { "k8s.io/initial-events-end": "true" } : undefined,
    },
  },
});
const errorEvent = (code: number, reason: string, message = reason): Ev => ({
  type: "ERROR",
  object: { kind: "Status", code, reason, message } as never,
});

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** A Status answer. */
function status(code: number, reason: string, extra: Record<string, unknown> = {}): Answer {
  return () => json({ kind: "Status", code, reason, message: `${code} ${reason}`, ...extra }, code);
}

/** A list page. */
function page(rv: string, names: string[], cont?: string): Answer {
  return () =>
    json({
      metadata: { resourceVersion: rv, continue: cont },
      items: names.map((n) => obj(n, rv)),
    });
}

/** A watch stream sending `events`, then ending as `end` says. */
function watch(events: Ev[], end: End = "close"): Answer {
  return (_url, signal) => {
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (const e of events) c.enqueue(new TextEncoder().encode(JSON.stringify(e) + "\n"));
        signal?.addEventListener("abort", () => {
          try {
            c.error(signal.reason);
          } catch { /* already closed */ }
        });
      },
      // Called once the events were read: only then does the stream end (an error would drop
      // what is still queued).
      pull(c) {
        if (end === "close") c.close();
        if (end === "reset") c.error(new TypeError("error reading a body: connection reset"));
      },
    });
    return new Response(body, { status: 200 });
  };
}

/** A request that never gets an answer until aborted. */
const silence: Answer = (_url, signal) =>
  new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));

/** A refused connection, as Deno's fetch reports it. */
const refused: Answer = () => {
  throw new TypeError(
    "error sending request for url (https://127.0.0.1:6443/x): client error (Connect): " +
      "tcp connect error: Connection refused (os error 111)",
  );
};

/** What Deno's fetch reports when something accepts the connection and closes or resets it
 * before any answer: a load balancer or proxy in front of an API server that is down. */
const closedBeforeAnswer: Answer[] = [
  () => {
    throw new TypeError("fetch failed", {
      cause: new Error(
        "error sending request for url (https://10.96.0.1/x): client error (Connect): " +
          "tls handshake eof",
      ),
    });
  },
  () => {
    throw new TypeError("fetch failed", {
      cause: new Error(
        "error sending request for url (https://10.96.0.1/x): client error (Connect): " +
          "Connection reset by peer (os error 104)",
      ),
    });
  },
  () => {
    throw new TypeError("fetch failed", {
      cause: new Error(
        "error sending request from 127.0.0.1:43136 for http://127.0.0.1:37075/x " +
          "(127.0.0.1:37075): client error (SendRequest): connection closed before message completed",
      ),
    });
  },
];

/** A scripted API server and a reflector on it; the run ends when the script runs out. */
function scripted(
  answers: Answer[],
  options: Partial<ReflectorOptions> & {
    version?: Answer;
    readyz?: Answer;
    onRequest?: (url: URL, r: Reflector) => void;
  } = {},
) {
  const requests: URL[] = [];
  const encodings: (string | null)[] = [];
  const sleeps: number[] = [];
  const ops: string[] = [];
  const logs: { level: LogLevel; msg: string; fields: LogFields }[] = [];
  let resets = 0;
  const ac = new AbortController();
  const queue = [...answers];
  const conn: KubeConnection & { generation?: number } = {
    server: "https://api",
    mode: "in-cluster",
    fetch(path: string, init?: RequestInit) {
      const url = new URL(path, "https://api");
      if (url.pathname === "/version") {
        return Promise.resolve((options.version ?? ok)(url, init?.signal));
      }
      if (url.pathname === "/readyz") {
        return Promise.resolve((options.readyz ?? ok)(url, init?.signal));
      }
      requests.push(url);
      encodings.push(new Headers(init?.headers).get("accept-encoding"));
      options.onRequest?.(url, reflector);
      const next = queue.shift();
      if (!next) {
        ac.abort();
        return Promise.reject(new DOMException("script ended", "AbortError"));
      }
      return Promise.resolve().then(() => next(url, init?.signal));
    },
    unauthorized() {},
    reset() {
      resets++;
    },
    close() {},
  };
  const store: ReflectorStore & { synced: boolean } = {
    synced: false,
    replace(items, rv) {
      this.synced = true;
      ops.push(`replace ${items.map((i) => i.metadata?.name).join(",")}@${rv}`);
    },
    apply(type, item) {
      ops.push(`${type} ${item.metadata?.name}@${item.metadata?.resourceVersion}`);
    },
    touch() {
      ops.push("touch");
    },
  };
  const log: Logger = {
    enabled: () => true,
    log(level: LogLevel, msg: string, fields: LogFields = {}) {
      logs.push({ level, msg, fields });
    },
  };
  const reflector = new Reflector(store, {
    namespace: "ns",
    connection: conn,
    log,
    streamingList: false,
    random: () => 0,
    sleep: (ms) => {
      sleeps.push(Math.round(ms));
      return Promise.resolve();
    },
    ...options,
  });
  return {
    reflector,
    conn,
    stop: () => ac.abort(),
    requests,
    encodings,
    sleeps,
    ops,
    logs,
    resets: () => resets,
    run: () => reflector.run(ac.signal),
    /** `resourceVersion` of each request, with its kind. */
    rvs: () =>
      requests.map((u) =>
        `${u.searchParams.get("watch") ? "watch" : "list"}:${
          u.searchParams.get("resourceVersion") ?? (u.searchParams.has("continue") ? "cont" : "-")
        }${u.searchParams.has("limit") ? "+limit" : ""}${
          u.searchParams.has("sendInitialEvents") ? "+initial" : ""
        }`
      ),
  };
}

const ok: Answer = () => json({ major: "1", minor: "37" });

Deno.test("the resourceVersion advances on every event and bookmark, and a broken watch resumes from it", async () => {
  const s = scripted([
    page("10", ["a"]),
    watch([added("b", "20"), bookmark("25")], "reset"),
    watch([modified("b", "30")], "reset"),
  ]);
  await s.run();
  assert.deepEqual(s.rvs(), ["list:0+limit", "watch:10", "watch:25", "watch:30"]);
  // Nothing applied twice: the view never goes back.
  assert.deepEqual(s.ops, ["replace a@10", "ADDED b@20", "touch", "MODIFIED b@30"]);
  assert.equal(s.reflector.lastSyncResourceVersion, "30");
  // client-go's watch loop opens the next watch at once after a watch that broke mid-stream.
  assert.deepEqual(s.sleeps, [], "a watch that broke after events is resumed without a wait");
  assert.equal(s.resets(), 2, "each on a fresh connection");
  assert.deepEqual(s.logs.filter((l) => l.msg === "watch broken; resuming").length, 2);
});

Deno.test("stopping the sidecar while a watch is open ends the run quietly, with no failure logged", async () => {
  const s = scripted([page("10", ["a"]), watch([bookmark("11")], "hang")]);
  const stop = new AbortController();
  const run = s.reflector.run(stop.signal);
  await new Promise((r) => setTimeout(r, 50));
  stop.abort();
  await run;
  assert.deepEqual(s.logs.filter((l) => l.level !== "info" && l.level !== "debug"), []);
  assert.deepEqual(s.sleeps, []);
  assert.equal(s.reflector.health.healthy, true, "a stop is not a broken watch");
});

Deno.test("stopping ends the run even when the watch body ignores the abort, as Deno's fetch did under load", async () => {
  // A worker of 250 reflectors on one API server kept 38 of them reading their watch bodies
  // after its abort, for good: the aborted fetch never ended the pending read.
  const deaf: Answer = () =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode(JSON.stringify(bookmark("11")) + "\n"));
        },
      }),
      { status: 200 },
    );
  const s = scripted([page("10", ["a"]), deaf]);
  const stop = new AbortController();
  const run = s.reflector.run(stop.signal);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(s.ops, ["replace a@10", "touch"]);
  stop.abort();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ended = await Promise.race([
    run.then(() => "ended"),
    new Promise((r) => {
      timer = setTimeout(() => r("still reading 5 s after the stop"), 5000);
    }),
  ]);
  clearTimeout(timer);
  assert.equal(ended, "ended");
  assert.deepEqual(s.logs.filter((l) => l.level !== "info" && l.level !== "debug"), []);
});

Deno.test("one fault's backoff does not spill into the next: a watch that delivers events resets it", async () => {
  // An API server restarted again and again (a rolling upgrade): each time the watch breaks,
  // the next one gets 410 (the new watch cache starts past us), and a relist follows.
  const answers: Answer[] = [page("10", [])];
  for (let i = 1; i <= 6; i++) {
    answers.push(
      watch([modified("a", `${i}1`)], "reset"),
      status(410, "Expired"),
      page(`${i}5`, ["a"]),
    );
  }
  const s = scripted(answers);
  await s.run();
  assert.deepEqual(
    s.sleeps,
    Array(6).fill(BACKOFF_INITIAL_MS),
    "every 410 after a working watch waits the initial backoff, never more",
  );
  assert.equal(s.ops.filter((o) => o.startsWith("replace")).length, 7);
});

Deno.test("a watch the server ends normally is resumed at once from its last bookmark", async () => {
  const s = scripted([page("10", []), watch([bookmark("15"), bookmark("16")]), watch([], "close")]);
  // The last watch closes at once with no event: that one is a failure.
  await s.run();
  assert.deepEqual(s.rvs(), ["list:0+limit", "watch:10", "watch:16", "watch:16"]);
  assert.deepEqual(s.sleeps, [BACKOFF_INITIAL_MS]);
});

const gone: { name: string; answer: Answer }[] = [
  { name: "as an HTTP status", answer: status(410, "Expired") },
  {
    name: "as an ERROR event",
    answer: watch([errorEvent(410, "Expired", "too old resource version")]),
  },
];
for (const { name, answer } of gone) {
  Deno.test(`410 ${name} backs off and relists from the last resourceVersion, not 0`, async () => {
    const s = scripted([
      page("10", ["a"]),
      watch([modified("a", "20")], "reset"),
      answer,
      page("40", ["a", "c"]),
    ]);
    await s.run();
    assert.deepEqual(s.rvs(), ["list:0+limit", "watch:10", "watch:20", "list:20", "watch:40"]);
    assert.deepEqual(s.ops, ["replace a@10", "MODIFIED a@20", "replace a,c@40"]);
    assert.deepEqual(s.sleeps, [800], "the 410 is backed off; the broken watch was not");
    const relist = s.logs.find((l) => l.msg === "relisting");
    assert.match(String(relist?.fields.reason), /410/);
  });
}

const unavailable: { name: string; answer: Answer }[] = [
  { name: "expired", answer: status(410, "Expired") },
  {
    name: "too large",
    answer: status(504, "Timeout", {
      details: {
        causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
      },
    }),
  },
];
for (const { name, answer } of unavailable) {
  Deno.test(`a relist from a resourceVersion that is ${name} falls back at once to a consistent list`, async () => {
    const s = scripted([
      page("10", ["a"]),
      status(410, "Expired"),
      answer,
      page("50", ["b"], "tok"),
      page("50", ["c"]),
    ]);
    await s.run();
    assert.deepEqual(s.rvs(), [
      "list:0+limit",
      "watch:10",
      "list:10",
      "list:+limit",
      "list:cont+limit",
      "watch:50",
    ]);
    assert.deepEqual(s.ops, ["replace a@10", "replace b,c@50"]);
    assert.deepEqual(s.sleeps, [800], "only the watch's 410 waited");
  });
}

Deno.test("a 410 between pages restarts the list whole", async () => {
  const s = scripted([
    page("10", ["a"], "tok1"),
    status(410, "Expired"),
    page("12", ["a", "b"]),
  ]);
  await s.run();
  assert.deepEqual(s.rvs(), ["list:0+limit", "list:cont+limit", "list:0", "watch:12"]);
  assert.deepEqual(s.ops, ["replace a,b@12"], "the half list was never stored");
  assert.deepEqual(s.sleeps, []);
});

Deno.test("a server that keeps answering 410 is backed off more each time, up to the cap", async () => {
  const answers: Answer[] = [page("10", [])];
  for (let i = 0; i < 8; i++) answers.push(status(410, "Expired"), page("10", []));
  const s = scripted(answers);
  await s.run();
  assert.deepEqual(s.sleeps, [800, 1600, 3200, 6400, 12800, 25600, BACKOFF_MAX_MS, BACKOFF_MAX_MS]);
  assert.equal(s.requests.length, 18);
});

Deno.test("the backoff resets after two minutes without a failure", async () => {
  let now = 0;
  const s = scripted(
    [
      page("10", []),
      status(500, "InternalError"),
      status(500, "InternalError"),
      status(500, "InternalError"),
      status(500, "InternalError"),
    ],
    {
      now: () => now,
      onRequest: (u) => {
        // The third watch comes two healthy minutes later.
        if (u.searchParams.get("watch") && s?.requests.length === 4) now += 121_000;
      },
    },
  );
  await s.run();
  assert.deepEqual(s.sleeps, [800, 1600, 800, 1600]);
});

Deno.test("a streaming list collects the initial events until the end bookmark, then watches on", async () => {
  const s = scripted([
    watch([
      added("a", "5"),
      added("b", "7"),
      bookmark("7"),
      bookmark("30", true),
      modified("a", "31"),
    ], "reset"),
  ], { streamingList: true });
  await s.run();
  // It broke after the last event: resumed by streaming from there.
  assert.deepEqual(s.rvs(), ["watch:+initial", "watch:31+initial"]);
  const first = s.requests[0].searchParams;
  assert.equal(first.get("resourceVersionMatch"), "NotOlderThan");
  assert.equal(first.get("allowWatchBookmarks"), "true");
  assert.deepEqual(s.ops, ["replace a,b@30", "MODIFIED a@31"]);
  // Its gzip comes one member per flush, which Deno's fetch would end the body at.
  assert.equal(s.encodings[0], "identity");
  assert.equal(s.logs.find((l) => l.msg === "synced")?.fields.via, "streaming list");
});

Deno.test("after a watch breaks, a streaming list from the last resourceVersion makes it current again without waiting for a bookmark", async () => {
  const states: boolean[] = [];
  const s = scripted([
    watch([added("a", "5"), bookmark("10", true), modified("a", "20")], "reset"),
    // The resumed watch: the state not older than 20, then its end bookmark.
    watch([added("a", "20"), bookmark("22", true)], "close"),
  ], { streamingList: true, onRequest: (_u, r) => states.push(r.health.healthy) });
  await s.run();
  assert.deepEqual(s.rvs(), ["watch:+initial", "watch:20+initial", "watch:22"]);
  assert.equal(s.requests[1]!.searchParams.get("resourceVersionMatch"), "NotOlderThan");
  // Nothing applied twice and nothing older: the store is replaced with the state at 22.
  assert.deepEqual(s.ops, ["replace a@10", "MODIFIED a@20", "replace a@22"]);
  assert.deepEqual(states, [false, false, true], "broken until the end bookmark, then healthy");
  assert.deepEqual(s.sleeps, []);
});

Deno.test("a streaming list from an expired resourceVersion streams the newest state at once", async () => {
  const s = scripted([
    watch([bookmark("30", true)], "reset"),
    status(410, "Expired"),
    watch([bookmark("90", true), modified("x", "91")], "reset"),
  ], { streamingList: true });
  await s.run();
  // The broken watch resumes by streaming from 30; the 410 of that streams the newest state
  // ("") at once, with no wait.
  assert.deepEqual(s.rvs(), [
    "watch:+initial",
    "watch:30+initial",
    "watch:+initial",
    "watch:91+initial",
  ]);
  assert.deepEqual(s.ops, ["replace @30", "replace @90", "MODIFIED x@91"]);
  assert.deepEqual(s.sleeps, []);
});

Deno.test("where the API server refuses a streaming list, the reflector lists in pages, and keeps doing so", async () => {
  const refusal = status(422, "Invalid", {
    message:
      "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
  });
  const s = scripted([
    refusal,
    page("10", ["a"]),
    watch([], "reset"),
    status(410, "Expired"),
    page("20", ["a"]),
  ], { streamingList: true });
  await s.run();
  assert.deepEqual(s.rvs(), [
    "watch:+initial",
    "list:0+limit",
    "watch:10",
    "watch:10",
    "list:10",
    "watch:20",
  ]);
  assert.equal(
    s.logs.filter((l) => l.msg === "streaming list not offered; listing in pages").length,
    1,
  );
});

Deno.test("health turns healthy at the first list, event or bookmark after a reconnect, never at headers", async () => {
  const seen: string[] = [];
  let push: ((e: Ev) => void) | undefined;
  const s = scripted([
    page("10", []),
    watch([], "reset"),
    (_u, signal) => {
      // Headers arrive now; the first bookmark only when the test pushes it.
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          push = (e) => c.enqueue(new TextEncoder().encode(JSON.stringify(e) + "\n"));
          signal?.addEventListener("abort", () => c.error(signal.reason));
        },
      });
      return new Response(body);
    },
  ], {
    onRequest: (_u, r) => seen.push(`${r.health.healthy}`),
  });
  const done = s.run();
  while (!push) await new Promise((r) => setTimeout(r, 1));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(s.reflector.health.healthy, false, "headers alone do not make it healthy");
  push(bookmark("11"));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(s.reflector.health.healthy, true);
  push({ type: "ERROR", object: { code: 500, reason: "InternalError", message: "boom" } as never });
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(s.reflector.health.healthy, false);
  await done;
  // Before the list: not healthy; before the watch: healthy from the list; after the break: not.
  assert.deepEqual(seen, ["false", "true", "false", "false"]);
});

Deno.test("a quiet watch whose connection answers probes stays healthy, is restarted quietly and never backs off", async () => {
  const s = scripted([page("10", []), watch([bookmark("11")], "hang"), watch([], "hang")], {
    probeAfterMs: 10,
    probeTimeoutMs: 50,
    idleTimeoutMs: 60,
  });
  const healthy: boolean[] = [];
  const t = setInterval(() => healthy.push(s.reflector.health.healthy), 5);
  await s.run();
  clearInterval(t);
  assert.deepEqual(s.rvs(), ["list:0+limit", "watch:10", "watch:11", "watch:11"]);
  assert.deepEqual(s.sleeps, [], "no backoff");
  assert.equal(s.resets(), 0);
  assert.ok(healthy.length > 5 && healthy.every((h) => h), "healthy all along");
  assert.equal(s.logs.filter((l) => l.msg === "restarting a quiet watch").length, 2);
  assert.ok(!s.logs.some((l) => l.level === "warn" || l.level === "error"));
});

Deno.test("a silent watch whose probe gets no answer is a dead connection: dropped and watched again on a fresh one", async () => {
  const s = scripted([page("10", []), watch([bookmark("11")], "hang"), watch([], "hang")], {
    probeAfterMs: 10,
    probeTimeoutMs: 20,
    idleTimeoutMs: 10_000,
    version: silence,
  });
  await s.run();
  assert.deepEqual(s.rvs(), ["list:0+limit", "watch:10", "watch:11", "watch:11"]);
  // The first watch had delivered a bookmark: resumed at once (client-go, once its HTTP/2 ping
  // timed out). The second died within a second with nothing: a failure, backed off.
  assert.deepEqual(s.sleeps, [800]);
  assert.equal(s.resets(), 2, "the pooled connection was dropped each time");
  const resumed = s.logs.find((l) => l.msg === "watch broken; resuming");
  assert.match(String(resumed?.fields.reason), /connection dead/);
  const line = s.logs.find((l) => l.msg === "backing off");
  assert.match(String(line?.fields.reason), /connection dead/);
});

Deno.test("a refused connection is retried about every second without growing the backoff; 5xx and 429 are not", async () => {
  const s = scripted([
    page("10", []),
    refused,
    refused,
    refused,
    status(503, "ServiceUnavailable"),
    status(503, "ServiceUnavailable"),
    refused,
    (u) => status(429, "TooManyRequests")(u),
    () =>
      json({ kind: "Status", code: 429, reason: "TooManyRequests", message: "slow down" }, 429, {
        "retry-after": "7",
      }),
  ]);
  await s.run();
  // random() = 0: a quick retry is 0.5 s; the backoff starts at 0.8 s and doubles.
  assert.deepEqual(s.sleeps, [500, 500, 500, 800, 1600, 500, 3200, 7000]);
  assert.equal(s.logs.filter((l) => l.msg === "backing off" && l.level === "warn").length, 6);
});

Deno.test("a connection closed or reset before any answer (a balancer with no API server behind it) is retried quickly too", async () => {
  const s = scripted([page("10", []), ...closedBeforeAnswer]);
  const badCert: Answer = () => {
    throw new TypeError("fetch failed", {
      cause: new Error(
        "error sending request for url (https://10.96.0.1/x): client error (Connect): " +
          "invalid peer certificate: UnknownIssuer",
      ),
    });
  };
  await s.run();
  assert.deepEqual(s.sleeps.slice(0, 3), [500, 500, 500]);
  const t = scripted([page("10", []), badCert, badCert]);
  await t.run();
  // A TLS failure is an answer of sorts (a wrong server or CA): backed off, not hammered.
  assert.deepEqual(t.sleeps.slice(0, 2), [800, 1600]);
});

Deno.test("a 403 while the API server is not ready is transient; once it is ready, the log names the Role", async () => {
  let ready = false;
  const s = scripted([
    status(403, "Forbidden"),
    (u) => {
      ready = true;
      return status(403, "Forbidden")(u);
    },
    page("10", []),
  ], { readyz: () => new Response("not ready", { status: ready ? 200 : 500 }) });
  await s.run();
  const lines = s.logs.filter((l) => l.msg === "backing off");
  assert.equal(lines[0].level, "warn");
  assert.match(String(lines[0].fields.reason), /not ready/);
  assert.doesNotMatch(String(lines[0].fields.reason), /Grant/);
  assert.equal(lines[1].level, "error");
  assert.match(String(lines[1].fields.reason), /Grant the pod's ServiceAccount a Role/);
  assert.deepEqual(s.sleeps, [500, 800]);
});

Deno.test("an idle timeout below the API server's bookmark period is refused at start with one line", () => {
  const env = (n: string) => n === "KUBERNETES_POD_DISCOVERY_SERVICE_NAME" ? "web" : undefined;
  for (const value of ["5", "59"]) {
    assert.throws(() => loadConfig([`--watch-idle-timeout=${value}`], { env }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /--watch-idle-timeout.*bookmark period \(60 s\).*set 60 or more/);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  }
  assert.equal(loadConfig(["--watch-idle-timeout=60"], { env }).watchIdleTimeoutMs, 60_000);
});

Deno.test("at the cap the backoff stays jittered within 15 to 30 s, so a fleet does not retry in step", () => {
  let r = 0;
  const b = new Backoff({ random: () => r, now: () => 0 });
  for (let i = 0; i < 7; i++) b.delay({ kind: "backoff" });
  const seen = [0, 0.25, 0.5, 0.999].map((x) => {
    r = x;
    return Math.round(b.delay({ kind: "backoff" }));
  });
  assert.deepEqual(seen, [30_000, 18_750, 22_500, 29_985]);
});

Deno.test("a flapping watch (headers, then a break, again and again) stays broken since its first break", async () => {
  const broken: (number | undefined)[] = [];
  const s = scripted([page("10", []), watch([], "reset"), watch([], "reset"), watch([], "reset")], {
    onRequest: (_u, r) => broken.push(r.health.brokenSince),
  });
  await s.run();
  assert.equal(broken[0], undefined);
  assert.equal(broken[1], undefined, "healthy after the list");
  assert.ok(broken[2] !== undefined);
  assert.deepEqual(broken.slice(3), [broken[2], broken[2]], "reconnecting never cleared it");
  assert.equal(s.reflector.health.healthy, false);
});

Deno.test("a watch from a resourceVersion too large for this API server relists from the newest state", async () => {
  const tooLarge = status(504, "Timeout", {
    details: {
      causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
    },
  });
  const s = scripted([
    page("10", []),
    watch([bookmark("90")], "reset"),
    tooLarge,
    tooLarge,
    page("95", ["a"]),
  ]);
  await s.run();
  assert.deepEqual(s.rvs(), [
    "list:0+limit",
    "watch:10",
    "watch:90",
    "list:90",
    "list:+limit",
    "watch:95",
  ]);
  assert.deepEqual(s.ops, ["replace @10", "touch", "replace a@95"]);
});

Deno.test("each watch asks for a random timeout from 5 to 10 minutes, so relists spread out", async () => {
  for (const [r, want] of [[0, 300], [0.5, 450], [0.999, 599]] as const) {
    const s = scripted([page("10", ["a"]), watch([bookmark("11")]), watch([])], {
      random: () => r,
    });
    await s.run();
    const watches = s.requests.filter((u) => u.searchParams.get("watch"));
    assert.ok(watches.length >= 2, `${watches.length} watches`);
    for (const u of watches) assert.equal(u.searchParams.get("timeoutSeconds"), String(want));
  }
});

Deno.test("a streaming list that never sends its initial-events-end bookmark is given up for a paginated list, with a warning", async () => {
  const s = scripted([
    // A proxy that ignores sendInitialEvents: a plain watch, quiet, no end bookmark.
    watch([added("a", "5")], "hang"),
    page("10", ["a", "b"]),
    watch([modified("a", "11")], "close"),
  ], { streamingList: true, initialEventsQuietMs: 50 });
  await s.run();
  assert.deepEqual(s.rvs(), ["watch:+initial", "list:0+limit", "watch:10", "watch:11"]);
  assert.deepEqual(s.ops, ["replace a,b@10", "MODIFIED a@11"]);
  const warning = s.logs.find((l) => l.msg === "streaming list never ended; listing in pages");
  assert.equal(warning?.level, "warn");
  assert.match(String(warning?.fields.reason), /initial-events-end/);
});

Deno.test("a streaming list that ends before its initial-events-end bookmark is given up for a paginated list too", async () => {
  const s = scripted([
    watch([added("a", "5")], "close"),
    page("10", ["a"]),
  ], { streamingList: true });
  await s.run();
  assert.deepEqual(s.rvs(), ["watch:+initial", "list:0+limit", "watch:10"]);
  assert.deepEqual(s.sleeps, [], "no backoff: listing is the way on");
});

Deno.test("a watch whose connection another watch reset moves to the new one at once, broken until it hears from the server", async () => {
  const healthy: boolean[] = [];
  const listeners = new Set<() => void>();
  const s = scripted([page("10", []), watch([bookmark("11")], "hang"), watch([], "hang")], {
    idleTimeoutMs: 60_000,
    onRequest: (u, r) => {
      healthy.push(r.health.healthy);
      if (u.searchParams.get("resourceVersion") !== "10") return;
      // Another reflector on the same connection found it dead and reset it: this watch ran on
      // the old HTTP client (over HTTP/2, the very same connection).
      setTimeout(() => listeners.forEach((l) => l()), 20);
    },
  });
  (s.conn as { onReset?: (l: () => void) => () => void }).onReset = (l) => {
    listeners.add(l);
    return () => listeners.delete(l);
  };
  const done = s.run();
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([done, new Promise((r) => timer = setTimeout(r, 1_000))]);
  clearTimeout(timer);
  s.stop();
  await done;
  assert.deepEqual(s.rvs().slice(0, 3), ["list:0+limit", "watch:10", "watch:11"]);
  assert.deepEqual(healthy.slice(1, 3), [true, false], "not vouched for after the move");
  assert.equal(s.resets(), 0, "moving resets nothing itself (no cascade through the others)");
  assert.deepEqual(s.sleeps, [], "no failure, no backoff");
  assert.equal(listeners.size, 0, "the watch let go of its reset listener");
});

Deno.test("a streaming list whose answer waits in the API server's queue longer than the quiet limit is still streamed, and streaming stays on", async () => {
  // A loaded API server (a priority-and-fairness queue, a watch cache still initializing after a
  // restart) holds the answer's headers; once it answers, the state and its end come at once.
  const queued = (answer: Answer, ms: number): Answer => (url, signal) =>
    new Promise((resolve) => setTimeout(() => resolve(answer(url, signal)), ms));
  const s = scripted([
    queued(watch([added("a", "5"), bookmark("10", true)], "close"), 200),
    watch([modified("a", "11")], "close"),
  ], { streamingList: true, initialEventsQuietMs: 50 });
  await s.run();
  // The third request is the script running out; it is still a plain watch, not a list.
  assert.deepEqual(s.rvs(), ["watch:+initial", "watch:10", "watch:11"]);
  assert.deepEqual(s.ops, ["replace a@10", "MODIFIED a@11"]);
  assert.equal(
    s.logs.find((l) => l.msg === "streaming list never ended; listing in pages"),
    undefined,
  );
});

Deno.test("a list on a black-holed connection is abandoned at the list timeout, the connection dropped, and the list retried", async () => {
  // A black hole answers nothing and ends nothing: only the list's own timeout ends the wait.
  const blackHole: Answer = (_url, signal) =>
    new Promise((_, reject) => signal!.addEventListener("abort", () => reject(signal!.reason)));
  const s = scripted([blackHole, page("10", ["a"]), watch([], "close")], { listTimeoutMs: 100 });
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ended = await Promise.race([
    s.run().then(() => "ended"),
    new Promise((r) => {
      timer = setTimeout(() => r("still waiting on the list 5 s later"), 5000);
    }),
  ]);
  clearTimeout(timer);
  s.stop();
  assert.equal(ended, "ended");
  assert.ok(performance.now() - started >= 100, "waited for the list timeout");
  assert.deepEqual(s.rvs().slice(0, 2), ["list:0+limit", "list:0+limit"]);
  assert.equal(s.ops[0], "replace a@10", "the retried list is stored");
  assert.ok(s.resets() >= 1, "the silent connection is dropped before the retry");
  const backoff = s.logs.find((l) => l.msg === "backing off");
  assert.ok(backoff, "the abandoned list is logged");
  assert.match(String(backoff.fields.reason), /timed? ?out|timeout/i);
});

Deno.test('a fetch failure shows its cause in the watch\'s health and stats, not a bare "fetch failed"', async () => {
  const cause = (what: string) =>
    new TypeError("fetch failed", {
      cause: new Error(`error sending request for url (https://10.96.0.1/x): ${what}`),
    });
  const badCert: Answer = () => {
    throw cause("client error (Connect): invalid peer certificate: UnknownIssuer");
  };
  const s = scripted([page("10", []), badCert]);
  await s.run();
  for (const seen of [s.reflector.stats.lastError, s.reflector.health.lastError]) {
    assert.match(String(seen), /^fetch failed: client error \(Connect\): invalid peer certificate/);
    assert.match(String(seen), /not signed by the CA/);
  }
  // A watch that broke mid-stream (`#resume`) names its cause too.
  const broken: Answer = (_url, signal) =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode(JSON.stringify(added("a", "11")) + "\n"));
          signal?.addEventListener("abort", () => c.error(signal.reason));
        },
        pull(c) {
          c.error(cause("connection error: Connection reset by peer (os error 104)"));
        },
      }),
    );
  const t = scripted([page("10", []), broken]);
  await t.run();
  assert.match(
    String(t.reflector.health.lastError),
    /^fetch failed: connection error: .*os error 104/,
  );
  assert.equal(t.reflector.stats.lastError, t.reflector.health.lastError);
});
