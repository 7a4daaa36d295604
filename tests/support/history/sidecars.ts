/**
 * The history checker's sidecars: one per way of picking Services (by name, every Service, a
 * label selector), each watching every tenant's namespace, each through a fault proxy of its
 * own (so a fault hits every watch of every mode), with one ServiceAccount granted each
 * namespace's Role (EndpointSlices, and Services for the selector mode). The sidecars run with
 * V8's `--gc-global` so that the heap `/metrics` reports after a collection is what is
 * reachable, and their heap is read at the start and the end of the run.
 *
 * @module
 */
import { createProxy, type FaultProxy } from "../cluster/faults.ts";
import { grantRole } from "../cluster/rbac.ts";
import { sleep } from "../cluster/wait.ts";
import {
  DISCOVERY_RULES,
  podMount,
  SIDECAR_PERMISSIONS,
  type SidecarProcess,
  spawnSidecar,
} from "../sidecar.ts";
import { SERVICES } from "./schedule.ts";

/** How a sidecar picks its Services. */
export type Mode = "names" | "all" | "selector";

/** The label the selector sidecar picks Services by; Services in {@linkcode PICKED} carry it. */
export const SELECTOR_LABEL = { history: "picked" } as const;
/** Services the selector picks; the others are never served by the selector sidecar. */
export const PICKED: readonly string[] = ["svc-a", "svc-b"];

/** The rules of the one ServiceAccount: EndpointSlices, and Services for the selector mode. */
const RULES = [...DISCOVERY_RULES, {
  apiGroups: [""],
  resources: ["services"],
  verbs: ["get", "list", "watch"],
}];

/** One sidecar of the run. */
export interface Sidecar {
  mode: Mode;
  /** Its name in the checker's reports: the mode. */
  name: string;
  process: SidecarProcess;
  proxy: FaultProxy;
}

/** The sidecars of a run. */
export interface Sidecars {
  list: Sidecar[];
  byMode: Record<Mode, Sidecar>;
  close(): Promise<void>;
}

/** Starts the three sidecars over `namespaces` (the first holds the ServiceAccount). */
export async function startSidecars(namespaces: string[]): Promise<Sidecars> {
  const mount = await podMount(namespaces[0]!, { rules: [] });
  for (const ns of namespaces) {
    await grantRole(
      ns,
      { kind: "ServiceAccount", name: mount.serviceAccount, namespace: namespaces[0]! },
      RULES,
    );
  }
  const selector = Object.entries(SELECTOR_LABEL).map(([k, v]) => `${k}=${v}`).join(",");
  const args: Record<Mode, string[]> = {
    names: [`--service-name=${namespaces.flatMap((ns) => SERVICES.map((s) => `${ns}/${s}`))}`],
    all: ["--all-services", `--namespaces=${namespaces}`],
    selector: [`--service-selector=${selector}`, `--namespaces=${namespaces}`],
  };
  const list: Sidecar[] = [];
  try {
    for (const mode of ["names", "all", "selector"] as const) {
      const proxy = await createProxy();
      const process = await spawnSidecar({
        env: {
          ...mount.env,
          KUBERNETES_SERVICE_HOST: "127.0.0.1",
          KUBERNETES_SERVICE_PORT: proxy.address.split(":")[1]!,
        },
        // Debug: every retry is logged, not only the first of a kind (the checker shows them).
        args: [...args[mode], "--log-level=debug"],
        // Every collection is a full one: the heap read after the run is what is reachable.
        denoFlags: [...SIDECAR_PERMISSIONS, "--v8-flags=--gc-global"],
      }).catch(async (e) => {
        await proxy.close();
        throw e;
      });
      list.push({
        mode,
        name: mode,
        process,
        proxy,
      });
    }
    for (const s of list) {
      while ((await s.process.request("/readyz")).status !== 200) await sleep(100);
    }
  } catch (e) {
    for (const s of list) await closeOne(s);
    await mount.remove();
    throw e;
  }
  const byMode = Object.fromEntries(list.map((s) => [s.mode, s])) as Record<Mode, Sidecar>;
  return {
    list,
    byMode,
    async close() {
      for (const s of list) await closeOne(s).catch(() => {});
      await mount.remove();
    },
  };
}

async function closeOne(s: Sidecar): Promise<void> {
  await s.process.stop();
  await s.proxy.close();
}

/** The sidecar's JS heap in use (bytes), from `/metrics`. */
export async function heapUsed(s: Sidecar): Promise<number> {
  const text = (await s.process.request("/metrics")).text;
  const m = text.match(/kpd_js_heap_bytes\{kind="used"\} (\d+)/);
  if (!m) throw new Error(`${s.name}: /metrics has no kpd_js_heap_bytes{kind="used"}`);
  return Number(m[1]);
}
