/**
 * What to watch, from the settings: per namespace the named Services, every Service, or those a
 * label selector picks (lib/selection.ts keeps which Services that is), and the reflectors that
 * watch it: one EndpointSlice watch per namespace (not per Service), label-selected to the named
 * Services where the selector fits in a URL, plus a Service watch in selector mode.
 *
 * @module
 */
import { type EndpointCache, SERVICE_NAME_LABEL } from "./cache.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { Reflector, type ReflectorOptions } from "./reflector.ts";
import type { WatchedServices } from "./selection.ts";

/** What to watch in each namespace, from the settings and the default namespace. */
export function watchPlan(config: Config, defaultNs: string): Map<string, WatchedServices> {
  const plan = new Map<string, WatchedServices>();
  if (config.services.length) {
    for (const s of config.services) {
      const ns = s.namespace || defaultNs;
      const w = plan.get(ns);
      if (w?.kind === "names") w.names.push(s.name);
      else plan.set(ns, { kind: "names", names: [s.name] });
    }
    return plan;
  }
  const namespaces = config.namespaces.length ? config.namespaces : [defaultNs];
  for (const ns of namespaces) {
    plan.set(
      ns,
      config.serviceSelector ? { kind: "selector", selector: config.serviceSelector } : {
        kind: "all",
      },
    );
  }
  return plan;
}

/** Options for {@linkcode planReflectors}: what every reflector of the plan shares. */
export interface PlanReflectorsOptions {
  /** The API server, shared by every reflector (lib/shared_connection.ts). */
  connection: ReflectorOptions["connection"];
  log: Logger;
  /** `--watch-idle-timeout` (ms). */
  idleTimeoutMs: number;
}

/** The reflectors that carry out `plan`, writing into `cache`'s stores. */
export function planReflectors(
  plan: Map<string, WatchedServices>,
  cache: EndpointCache,
  options: PlanReflectorsOptions,
): Reflector[] {
  const { connection: shared, log, idleTimeoutMs } = options;
  const reflectors: Reflector[] = [];
  for (const [namespace, watched] of plan) {
    const common = { namespace, connection: shared, log, idleTimeoutMs };
    reflectors.push(
      new Reflector(cache.sliceStore(namespace), {
        ...common,
        labelSelector: watched.kind === "names" ? selectorFor(watched.names) : undefined,
      }),
    );
    if (watched.kind === "selector") {
      reflectors.push(
        new Reflector(cache.serviceStore(namespace), {
          ...common,
          resource: { group: "", version: "v1", plural: "services" },
          labelSelector: watched.selector,
        }),
      );
    }
  }
  return reflectors;
}

/**
 * Longest label selector sent; past it the namespace is watched whole and the cache keeps only
 * the named Services. Deno's fetch refuses URLs of 65,535 characters or more (measured in
 * bench/: with 991 long names the list fitted but the watch did not, and the view silently
 * stopped updating), and watching every slice of the namespace costs the API server no more
 * than one selector-filtered watch.
 */
const MAX_SELECTOR_LENGTH = 4_000;

function selectorFor(names: string[]): string | undefined {
  const selector = names.length === 1
    ? `${SERVICE_NAME_LABEL}=${names[0]}`
    : `${SERVICE_NAME_LABEL} in (${names.join(",")})`;
  return selector.length > MAX_SELECTOR_LENGTH ? undefined : selector;
}
