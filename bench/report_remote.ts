/**
 * The report's section of scenario `remote_flood` (bench/remote_flood.ts): what a held
 * connection from outside the Pod costs, what the default caps allow at most, how many fit in
 * the example's memory request and limit, and the Pod's own reads beside the flood.
 *
 * @module
 */
import { f, ms } from "./_format.ts";
import type { Results } from "./types.ts";

/** Connections of `perKB` each that fit between `idleMB` and `capMB`. */
function fit(capMB: number, idleMB: number, perKB: number): string {
  return f(Math.max(0, Math.floor((capMB - idleMB) * 1e6 / 1024 / perKB)), 0);
}

/** The section, or nothing when the scenario has not run. */
export function remoteFloodSection(r: Results): string[] {
  const x = r.remoteFlood;
  if (!x) return [];
  const out = [
    "## Clients outside the Pod (scenario `remote_flood`)",
    "",
    `A client in a network namespace holds ${f(x.runs[0]?.connections, 0)} half-open`,
    "connections (a request line, never the end of the headers), then as many idle keep-alive",
    "ones (one /health, then nothing), with the sidecar's caps and timers out of the way; VmRSS",
    "and the sidecar's sockets (/proc/PID/fd) are read once each kind is held. Kernel memory is",
    "an estimate: the sockets times this kernel's slab object sizes",
    `(${Object.entries(x.slabBytes).map(([k, v]) => `${k} ${v} B`).join(", ")}), with empty`,
    "queues; it is charged to the Pod's memory cgroup, not to VmRSS. The Pod's own client reads",
    "GET /endpoints (100 endpoints) on 127.0.0.1 back to back, alone and during the flood.",
    "",
    "| flags | idle VmRSS | half-open: sockets, VmRSS, kernel | idle keep-alive: sockets, VmRSS, kernel | /endpoints p99 alone | during the flood |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const run of x.runs) {
    out.push(
      `| ${run.variant} | ${f(run.idleRssMB)} MB | ${f(run.socketsPerHalfOpen, 2)}, ${
        f(run.rssKBPerHalfOpen)
      } KiB, ${f(x.kernelKBPerHalfOpen)} KiB | ${f(run.socketsPerIdle, 2)}, ${
        f(run.rssKBPerIdle)
      } KiB, ${f(x.kernelKBPerIdle)} KiB | ${ms(run.baselineMs)} | ${ms(run.duringMs)} |`,
    );
  }
  out.push(
    "",
    `Within ${x.example}'s memory request (${f(x.requestMB)} MB) and limit (${f(x.limitMB)} MB),`,
    `and at the default caps (${f(x.defaultTotal, 0)} per listener, ${x.defaultPerClient} per`,
    "client address) when every held connection is an idle keep-alive one (the dearer kind):",
    "",
    "| flags | fit in the request | fit in the limit | one listener full | both listeners full |",
    "| --- | --- | --- | --- | --- |",
  );
  for (const run of x.runs) {
    const per = run.rssKBPerIdle + x.kernelKBPerIdle;
    const full = (n: number) => `${f(run.idleRssMB + n * per * 1024 / 1e6)} MB`;
    out.push(
      `| ${run.variant} | ${fit(x.requestMB, run.idleRssMB, per)} | ${
        fit(x.limitMB, run.idleRssMB, per)
      } | ${full(x.defaultTotal)} | ${full(2 * x.defaultTotal)} |`,
    );
  }
  return [...out, ""];
}
