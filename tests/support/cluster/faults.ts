/**
 * The fault handles of the control plane: API server stop/start/restart, etcd compaction and
 * TCP proxies that can cut, black-hole or slow connections.
 *
 * @module
 */

import { testCluster } from "./http.ts";

async function control<T>(method: string, path: string): Promise<T> {
  const res = await fetch(`${testCluster().control}${path}`, { method });
  const text = await res.text();
  if (!res.ok) throw new Error(`control ${method} ${path}: HTTP ${res.status}: ${text.trim()}`);
  return JSON.parse(text) as T;
}

/**
 * Stops and starts the API server (etcd keeps the data); resolves once /readyz answers 200 (~15 s).
 * `featureGates` (e.g. "WatchList=false"; "" for the defaults) applies from this start on.
 */
export async function restartAPIServer(options: { featureGates?: string } = {}): Promise<void> {
  const q = options.featureGates === undefined
    ? ""
    : `?featureGates=${encodeURIComponent(options.featureGates)}`;
  await control("POST", `/apiserver/restart${q}`);
}

/** Stops the API server. */
export async function stopAPIServer(): Promise<void> {
  await control("POST", "/apiserver/stop");
}

/**
 * Starts the stopped API server; resolves once /readyz answers 200. Do not call it while the server
 * runs.
 */
export async function startAPIServer(): Promise<void> {
  await control("POST", "/apiserver/start");
}

/** Compacts etcd at its current revision and returns that revision. */
export async function compactEtcd(): Promise<number> {
  const r = await control<{ revision: number }>("POST", "/etcd/compact");
  return r.revision;
}

/** A TCP proxy to the API server (TLS stays end to end) with faults on demand. */
export interface FaultProxy {
  /** https://127.0.0.1:port, to use as the server URL. */
  url: string;
  /** 127.0.0.1:port. */
  address: string;
  /** Resets (RST) every open connection; returns how many there were. */
  cut(): Promise<number>;
  /** Forwards nothing any more, on open and new connections; those stay dead after pass(). */
  blackhole(): Promise<void>;
  /** Forwards again (new connections only), with optional latency per chunk. */
  pass(options?: { latencyMs?: number }): Promise<void>;
  /** Connections accepted so far and open now, and the mode. */
  stats(): Promise<{ accepted: number; open: number; mode: string; latencyMs: number }>;
  /** Closes the listener and resets its connections. */
  close(): Promise<void>;
}

/** Starts a fault proxy to the API server. */
export async function createProxy(): Promise<FaultProxy> {
  const { id, address } = await control<{ id: string; address: string }>("POST", "/proxies");
  return {
    url: `https://${address}`,
    address,
    async cut() {
      return (await control<{ cut: number }>("POST", `/proxies/${id}/cut`)).cut;
    },
    async blackhole() {
      await control("POST", `/proxies/${id}/mode?mode=blackhole`);
    },
    async pass(options = {}) {
      await control("POST", `/proxies/${id}/mode?mode=pass&latencyMs=${options.latencyMs ?? 0}`);
    },
    stats() {
      return control("GET", `/proxies/${id}`);
    },
    async close() {
      await control("DELETE", `/proxies/${id}`);
    },
  };
}
