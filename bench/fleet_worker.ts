/**
 * One process of the fleet scenario (bench/fleet.ts): many clients of the API server that each
 * hold their own connection, as many pods' sidecars would.
 *
 *   deno run --allow-net --allow-read --allow-env bench/fleet_worker.ts \
 *     --mode=watch|poll --count=N --namespace=NS --service=NAME [--period-ms=5000]
 *
 * `watch`: N instances of the sidecar's own `Reflector` (lib/reflector.ts), each on its own
 * in-cluster connection (lib/kube_client.ts: its own HTTP client, so its own TCP connection),
 * listing and watching the Service's EndpointSlices. `poll`: N clients each GETting the v1
 * Endpoints every period (random phase) on their own HTTP client, as the Go service did.
 * The environment is a pod's (KUBERNETES_SERVICE_HOST/PORT, the service-account mount).
 *
 * Prints `{"ready":N}` once every client has its first answer. Then, for each line
 * `{"await":"IP","timeoutMs":T}` on stdin, prints `{"marker":"IP","times":[...]}`: when each
 * client first saw an address IP in the Service (wall-clock ms, timeOrigin + now), once all
 * have or after T.
 *
 * @module
 */
import { connect } from "../lib/kube_client.ts";
import { createLogger } from "../lib/log.ts";
import { Reflector } from "../lib/reflector.ts";
import type { KubeItem, ReflectorStore } from "../lib/store.ts";

function flag(name: string, fallback?: string): string {
  const v = Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
  if (v === undefined) throw new TypeError(`Missing --${name}=`);
  return v;
}

const mode = flag("mode");
const count = Number(flag("count"));
const namespace = flag("namespace");
const service = flag("service");
const periodMs = Number(flag("period-ms", "5000"));
const saDir = Deno.env.get("KUBERNETES_POD_DISCOVERY_SERVICE_ACCOUNT_DIR")!;
/** How long the reflectors may take to end after the stop before the worker exits anyway. */
const STOP_GRACE_MS = 5_000;

/** marker → when each client first saw it. */
const seen = new Map<string, number[]>();
const wakers = new Set<() => void>();
let ready = 0;

function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/** One client's view: records each address it has not seen before. */
function observer(): (ips: string[]) => void {
  const mine = new Set<string>();
  return (ips) => {
    const t = wallNow();
    for (const ip of ips) {
      if (mine.has(ip)) continue;
      mine.add(ip);
      const list = seen.get(ip) ?? [];
      list.push(t);
      seen.set(ip, list);
    }
    for (const w of wakers) w();
  };
}

function sliceIps(item: KubeItem): string[] {
  const s = item as { endpoints?: { addresses?: string[] }[] };
  return (s.endpoints ?? []).flatMap((e) => e.addresses ?? []);
}

function endpointsIps(body: unknown): string[] {
  const e = body as { subsets?: { addresses?: { ip: string }[] }[] };
  return (e.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip));
}

/** A ReflectorStore that only reports the addresses it is given. */
class ObservingStore implements ReflectorStore {
  synced = false;
  #see = observer();

  replace(items: KubeItem[]): void {
    if (!this.synced) ready++;
    this.synced = true;
    this.#see(items.flatMap(sliceIps));
  }

  apply(type: string, item: KubeItem): void {
    if (type !== "DELETED") this.#see(sliceIps(item));
  }

  touch(): void {}
}

const ac = new AbortController();
Deno.addSignalListener("SIGTERM", () => ac.abort());
const log = createLogger("warn");

/** Each client's run, and whether it has ended (for the report of a stop that hangs). */
const runs: { reflector: Reflector; done: boolean; promise: Promise<void> }[] = [];

async function watchers(): Promise<void> {
  for (let i = 0; i < count; i++) {
    const connection = await connect({ serviceAccountDir: saDir });
    const r = new Reflector(new ObservingStore(), {
      namespace,
      labelSelector: `kubernetes.io/service-name=${service}`,
      connection,
      log,
    });
    const run = { reflector: r, done: false, promise: Promise.resolve() };
    run.promise = r.run(ac.signal).finally(() => {
      run.done = true;
      connection.close();
    });
    runs.push(run);
  }
}

async function poller(): Promise<void> {
  const client = Deno.createHttpClient({ caCerts: [Deno.readTextFileSync(`${saDir}/ca.crt`)] });
  const token = Deno.readTextFileSync(`${saDir}/token`).trim();
  const host = Deno.env.get("KUBERNETES_SERVICE_HOST");
  const port = Deno.env.get("KUBERNETES_SERVICE_PORT");
  const url = `https://${host}:${port}/api/v1/namespaces/${namespace}/endpoints/${service}`;
  const see = observer();
  let first = true;
  const start = wallNow() + Math.random() * periodMs;
  for (let k = 0; !ac.signal.aborted; k++) {
    const wait = start + k * periodMs - wallNow();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (ac.signal.aborted) break;
    try {
      const r = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, client });
      if (r.status === 200) {
        const body = await r.json();
        if (first) ready++;
        first = false;
        see(endpointsIps(body));
      } else await r.body?.cancel();
    } catch {
      // the next poll retries, as the Go service did
    }
  }
  client.close();
}

if (mode === "watch") await watchers();
else if (mode === "poll") { for (let i = 0; i < count; i++) void poller(); }
else throw new TypeError(`--mode=${mode}: want watch or poll`);

const encoder = new TextEncoder();
function print(o: unknown): void {
  Deno.stdout.writeSync(encoder.encode(JSON.stringify(o) + "\n"));
}

function until(done: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      wakers.delete(check);
      resolve();
    };
    const check = () => done() && finish();
    const timer = setTimeout(finish, timeoutMs);
    wakers.add(check);
    check();
  });
}

await until(() => ready >= count, 120_000);
print({ ready });
let buffer = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  buffer += chunk;
  let nl: number;
  while ((nl = buffer.indexOf("\n")) >= 0) {
    const cmd = JSON.parse(buffer.slice(0, nl)) as { await: string; timeoutMs: number };
    buffer = buffer.slice(nl + 1);
    await until(() => (seen.get(cmd.await)?.length ?? 0) >= count, cmd.timeoutMs);
    print({ marker: cmd.await, times: seen.get(cmd.await) ?? [] });
  }
}
ac.abort();
// Every client should end at once on abort; one that does not must not keep the bench waiting:
// say which, and exit.
const ended = await Promise.race([
  Promise.all(runs.map((r) => r.promise)).then(() => true),
  new Promise<false>((r) => setTimeout(() => r(false), STOP_GRACE_MS)),
]);
if (!ended) {
  const stuck = runs.filter((r) => !r.done);
  console.error(
    `fleet worker: ${stuck.length} of ${runs.length} reflectors still running ` +
      `${STOP_GRACE_MS} ms after the stop: ${
        JSON.stringify(stuck.slice(0, 3).map((r) => r.reflector.stats))
      }`,
  );
}
Deno.exit(ended ? 0 : 3);
