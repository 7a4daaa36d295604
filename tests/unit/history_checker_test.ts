import assert from "node:assert/strict";
import type { EndpointView } from "../../lib/endpoints.ts";
import {
  checkHistory,
  type ClientSpec,
  type History,
  type TruthView,
} from "../support/history/checker.ts";
import type { Answer } from "../support/history/recorder.ts";
import { changeSchedule, faultSchedule } from "../support/history/schedule.ts";
import type { TruthPoint } from "../support/history/truth.ts";

function ep(ip: string, ready = true): EndpointView {
  return {
    addresses: [ip],
    addressType: "IPv4",
    ready,
    serving: ready,
    terminating: false,
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
  };
}

/** svc a: [] at 10, [1] at 20, [1, 2] at 30; svc b: [3] at 10, gone (no slice) at 25. */
const TIMELINES: Record<string, TruthPoint[]> = {
  "n/a": [
    { rv: 10, endpoints: [], seenAt: 0 },
    { rv: 20, endpoints: [ep("10.0.0.1")], seenAt: 1_000 },
    { rv: 30, endpoints: [ep("10.0.0.1"), ep("10.0.0.2")], seenAt: 2_000 },
  ],
  "n/b": [
    { rv: 10, endpoints: [ep("10.0.0.3")], seenAt: 0 },
    { rv: 25, endpoints: undefined, seenAt: 1_500 },
  ],
};

const truth: TruthView = {
  startRv: 10,
  timeline: (ns, name) => TIMELINES[`${ns}/${name}`] ?? [],
  services: (ns) => Object.keys(TIMELINES).filter((k) => k.startsWith(`${ns}/`)),
  picked: () => [],
};

const poller: ClientSpec = {
  name: "poll a",
  sidecar: "s",
  mode: "names",
  namespace: "n",
  kind: "service",
  subject: "n/a",
  polls: true,
};

function answer(t: number, index: number, ips: string[], extra: Partial<Answer> = {}): Answer {
  const endpoints = ips.map((ip) => ep(ip));
  return {
    client: "poll a",
    kind: "service",
    subject: "n/a",
    t,
    status: 200,
    index,
    etag: `"n/a@${index}"`,
    body: JSON.stringify({ namespace: "n", name: "a", index, endpoints }),
    ...extra,
  };
}

function history(answers: Answer[], more: Partial<History> = {}): History {
  return {
    answers,
    clients: [poller],
    truth,
    faults: [],
    final: { rv: 30, at: 2_000, deadline: 3_000 },
    t0: 0,
    ...more,
  };
}

function assertions(h: History): string[] {
  return [...new Set(checkHistory(h).violations.map((v) => v.assertion))].sort();
}

Deno.test("a history that follows the truth in order has no violation", () => {
  const h = history([
    answer(100, 10, []),
    answer(1_200, 20, ["10.0.0.1"]),
    answer(2_500, 30, ["10.0.0.1", "10.0.0.2"]),
    answer(3_500, 30, ["10.0.0.1", "10.0.0.2"]),
  ]);
  assert.deepEqual(checkHistory(h).violations, []);
});

Deno.test("a view that goes back to an older state breaks order and index", () => {
  const h = history([
    answer(100, 10, []),
    answer(1_200, 20, ["10.0.0.1"]),
    answer(2_500, 30, ["10.0.0.1", "10.0.0.2"]),
    answer(2_700, 20, ["10.0.0.1"], { etag: '"n/a@20b"' }),
    answer(3_500, 30, ["10.0.0.1", "10.0.0.2"]),
  ]);
  assert.deepEqual(assertions(h), ["index-never-goes-back", "true-state-in-order"]);
});

Deno.test("a state that never was is reported, and one ETag with two bodies too", () => {
  const h = history([
    answer(100, 10, []),
    answer(1_200, 20, ["10.0.0.9"], { etag: '"n/a@10"' }),
    answer(2_500, 30, ["10.0.0.1", "10.0.0.2"]),
    answer(3_500, 30, ["10.0.0.1", "10.0.0.2"]),
  ]);
  assert.deepEqual(assertions(h), [
    "index-names-its-state",
    "one-etag-one-body",
    "true-state-in-order",
  ]);
});

Deno.test("an error while a fault is under way breaks 'the last good view is served'", () => {
  const fault = {
    label: "outage",
    start: 1_100,
    end: 1_900,
    refRv: 30,
    refAt: 2_000,
    deadline: 2_600,
    from: 1_900,
  };
  const h = history([
    answer(100, 10, []),
    answer(1_200, 20, ["10.0.0.1"]),
    answer(1_500, 0, [], { status: 0, body: "connection refused", etag: undefined }),
    answer(2_500, 30, ["10.0.0.1", "10.0.0.2"]),
    answer(3_500, 30, ["10.0.0.1", "10.0.0.2"]),
  ], { faults: [fault] });
  assert.deepEqual(assertions(h), ["last-good-view-served"]);
});

Deno.test("a view still old at a fault's deadline breaks recovery, and its figure shows it", () => {
  const fault = {
    label: "blackhole",
    start: 1_100,
    end: 1_100,
    refRv: 30,
    refAt: 2_000,
    deadline: 2_600,
    from: 1_100,
  };
  const h = history([
    answer(100, 10, []),
    answer(1_200, 20, ["10.0.0.1"]),
    answer(2_500, 20, ["10.0.0.1"]),
    answer(2_900, 30, ["10.0.0.1", "10.0.0.2"]),
  ], { faults: [fault], final: { rv: 30, at: 2_000, deadline: 3_000 } });
  const { violations, figures } = checkHistory(h);
  assert.deepEqual(violations.map((v) => v.assertion), ["recovers-in-time"]);
  assert.equal(Math.round(figures.recoveries[0]!.ms!), 1_800);
});

Deno.test("a client that never answered is reported, and as a poller it never recovered", () => {
  const fault = {
    label: "cut",
    start: 1_100,
    end: 1_100,
    refRv: 30,
    refAt: 2_000,
    deadline: 2_600,
    from: 1_100,
  };
  const sse: ClientSpec = { ...poller, name: "sse a", kind: "sse", polls: false };
  const h = history([
    answer(100, 10, []),
    answer(2_500, 30, ["10.0.0.1", "10.0.0.2"]),
  ], { clients: [poller, { ...poller, name: "silent poll a" }, sse], faults: [fault] });
  const { violations, figures } = checkHistory(h);
  assert.deepEqual(
    violations.map((v) => `${v.assertion} ${v.client}`).sort(),
    [
      "client-answered silent poll a",
      "client-answered sse a",
      "recovers-in-time silent poll a",
      "recovers-in-time silent poll a",
      "sse-ends-at-final-state sse a (n/a)",
    ],
  );
  assert.equal(figures.recoveries[0]!.ms, Infinity);
});

Deno.test("with every Service watched, one that lost its slices must leave /v1/services", () => {
  const list = (t: number, services: [string, number][]): Answer => ({
    client: "list",
    kind: "services",
    subject: "n",
    t,
    status: 200,
    index: 30,
    etag: `"services@${t}"`,
    body: JSON.stringify({
      services: services.map(([name, ready]) => ({
        namespace: "n",
        name,
        endpoints: { ready, serving: ready, terminating: 0, total: ready },
      })),
    }),
  });
  const lister: ClientSpec = {
    ...poller,
    name: "list",
    mode: "all",
    kind: "services",
    subject: "*",
  };
  const good = history([list(100, [["a", 0], ["b", 1]]), list(2_500, [["a", 2]])], {
    clients: [lister],
  });
  assert.deepEqual(checkHistory(good).violations, []);
  const stale = history([
    list(100, [["a", 0], ["b", 1]]),
    list(2_500, [["a", 2], ["b", 0]]),
    list(3_500, [["a", 2], ["b", 0]]),
  ], {
    clients: [lister],
  });
  assert.deepEqual(assertions(stale), [
    "ends-at-final-state",
    "recovers-in-time",
    "true-state-in-order",
  ]);
});

Deno.test("an SSE stream must end at the final state and announce a removal", () => {
  const sse: ClientSpec = {
    ...poller,
    name: "sse",
    mode: "all",
    kind: "sse",
    subject: "*",
    polls: false,
  };
  const event = (t: number, name: string, ips: string[], type = "update"): Answer => ({
    client: "sse",
    kind: "sse",
    subject: `n/${name}`,
    t,
    status: 200,
    index: type === "removed" ? 25 : ips.length ? 10 + 10 * ips.length : 10,
    body: JSON.stringify({ namespace: "n", name, endpoints: ips.map((ip) => ep(ip)) }),
    event: type,
  });
  const complete = [
    event(100, "a", [], "snapshot"),
    event(100, "b", ["10.0.0.3"], "snapshot"),
    event(1_200, "a", ["10.0.0.1"]),
    event(1_600, "b", [], "removed"),
    event(2_100, "a", ["10.0.0.1", "10.0.0.2"]),
  ];
  assert.deepEqual(checkHistory(history(complete, { clients: [sse] })).violations, []);
  const silent = complete.filter((a) => a.event !== "removed");
  assert.deepEqual(assertions(history(silent, { clients: [sse] })), ["sse-ends-at-final-state"]);
});

Deno.test("the same seed gives the same changes and faults; another seed does not", () => {
  assert.deepEqual(changeSchedule(7, 200), changeSchedule(7, 200));
  assert.deepEqual(faultSchedule(7, 2), faultSchedule(7, 2));
  assert.notDeepEqual(changeSchedule(7, 200), changeSchedule(8, 200));
  const kinds = new Set(changeSchedule(7, 400).map((c) => c.kind));
  assert.deepEqual([...kinds].sort(), [
    "addPod",
    "createService",
    "deleteService",
    "deleteSlice",
    "flipReady",
    "removePod",
    "terminatePod",
  ]);
  const outage = faultSchedule(7).find((f) => f.kind === "outage");
  assert.ok(outage && outage.ms >= 30_000, "the API server is down 30 s or more");
});

Deno.test("a resumed all-Services stream that never carried a view below its resume id skips it", () => {
  const sse: ClientSpec = {
    ...poller,
    name: "resuming",
    mode: "all",
    kind: "sse",
    subject: "*",
    polls: false,
  };
  const event = (t: number, name: string, index: number, ips: string[]): Answer => ({
    client: "resuming",
    kind: "sse",
    subject: `n/${name}`,
    t,
    status: 200,
    index,
    body: JSON.stringify({ namespace: "n", name, endpoints: ips.map((ip) => ep(ip)) }),
    event: "update",
  });
  const resumed = (t: number, index: number): Answer => ({
    client: "resuming",
    kind: "sse",
    subject: "*",
    t,
    status: 200,
    index,
    body: "",
    event: "(resumed)",
  });
  // The poller of a saw its view at index 20 (made before the change with id 30 was sent).
  const polled = answer(1_500, 20, ["10.0.0.1"]);
  const streamed = [
    event(100, "a", 10, []),
    event(100, "b", 10, ["10.0.0.3"]),
    event(1_700, "b", 30, []),
  ];
  const skipping = history([polled, ...streamed, resumed(1_800, 30)], {
    clients: [poller, sse],
  });
  assert.ok(assertions(skipping).includes("resume-skips-no-change"));
  const carried = history(
    [polled, ...streamed, event(1_400, "a", 20, ["10.0.0.1"]), resumed(1_800, 30)],
    { clients: [poller, sse] },
  );
  assert.ok(!assertions(carried).includes("resume-skips-no-change"));
  assert.equal(checkHistory(carried).figures.resumes, 1);
  // After the resume at 30, a change with id 25 (below it) comes: a resume at 30 misses it.
  const lowId = history([...streamed, resumed(1_800, 30), event(1_900, "a", 25, ["10.0.0.1"])], {
    clients: [sse],
  });
  assert.ok(assertions(lowId).includes("resumed-ids-not-below"));
});

Deno.test("a last-updated moment that claims a stale view current is dishonest, except within a black hole's bound", () => {
  // The truth of a became [10.0.0.1] at rv 20 (seen at 1 s): at 8 s, [] is 7 s stale.
  const stale = answer(8_000, 10, [], { knownAt: 8_000, age: 0 });
  const h = history([answer(100, 10, [], { knownAt: 100, age: 0 }), stale], {
    final: { rv: 10, at: 0, deadline: 0 },
  });
  assert.ok(assertions(h).includes("last-updated-is-honest"));
  const hole = {
    label: "blackhole",
    start: 500,
    end: 500,
    refRv: 20,
    refAt: 600,
    deadline: 60_500,
    from: 500,
  };
  const inHole = history([answer(100, 10, [], { knownAt: 100, age: 0 }), stale], {
    faults: [hole],
    final: { rv: 10, at: 0, deadline: 0 },
  });
  assert.ok(!assertions(inHole).includes("last-updated-is-honest"));
  // Never fresh again after the black hole: reported.
  assert.ok(assertions(inHole).includes("fresh-again-after-black-hole"));
  const wrongAge = history([answer(100, 10, [], { knownAt: 100, age: 9 })], {
    final: { rv: 10, at: 0, deadline: 0 },
  });
  assert.ok(assertions(wrongAge).includes("age-agrees"));
});

Deno.test("a sidecar's heap grown past the bound is reported", () => {
  const heap = [{ sidecar: "all", before: 10e6, after: 30e6 }];
  assert.ok(assertions(history([], { clients: [], heap })).includes("heap-within-bound"));
  const flat = [{ sidecar: "all", before: 10e6, after: 11e6 }];
  assert.deepEqual(assertions(history([], { clients: [], heap: flat })), []);
});

Deno.test("an SSE stream that the sidecar ends while it runs is reported", () => {
  const sse: ClientSpec = { ...poller, name: "sse", kind: "sse", subject: "n/a", polls: false };
  const event = (t: number, ips: string[], type = "update"): Answer => ({
    ...answer(t, ips.length ? 10 + 10 * ips.length : 10, ips),
    client: "sse",
    kind: "sse",
    etag: undefined,
    event: type,
  });
  const whole = [
    event(100, [], "snapshot"),
    event(1_200, ["10.0.0.1"]),
    event(2_100, ["10.0.0.1", "10.0.0.2"]),
  ];
  assert.deepEqual(checkHistory(history(whole, { clients: [sse] })).violations, []);
  const ended = { ...event(2_200, []), status: 200, body: "", event: "(stream ended)" };
  assert.deepEqual(assertions(history([...whole, ended], { clients: [sse] })), [
    "sse-stream-ended",
  ]);
});
