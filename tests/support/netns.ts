/**
 * A client outside the Pod, for tests of the loopback policy: a network namespace joined to the
 * test's own by a veth pair, with private addresses (10.213.x.y/30 and fd21:213:x::/64) used
 * only on that pair. The host end's addresses are where the "kubelet" in the namespace sends its
 * probes, as the real kubelet reaches a Pod's IP. Needs root (`ip netns`); names are unique per
 * run and everything is removed by {@linkcode PodNetwork.remove}.
 *
 * @module
 */

/** A namespace outside the Pod and the addresses it reaches the test's listeners on. */
export interface PodNetwork {
  /** The namespace's name. */
  name: string;
  /** The host end's IPv4 address (the listener's address as seen from the namespace). */
  hostV4: string;
  /** The host end's IPv6 address. */
  hostV6: string;
  /** The namespace end's IPv4 address (the client address the listener sees). */
  clientV4: string;
  /** An HTTP request from inside the namespace, with curl: status and body. */
  request(
    url: string,
    options?: { method?: string; pathAsIs?: boolean },
  ): Promise<{ status: number; body: string }>;
  /** Deletes the namespace and the veth pair. */
  remove(): Promise<void>;
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

/** Creates a namespace and a veth pair to it, both up, with addresses on both ends. */
export async function createPodNetwork(): Promise<PodNetwork> {
  const id = crypto.getRandomValues(new Uint8Array(3));
  const tag = [...id].map((b) => b.toString(16).padStart(2, "0")).join("");
  const name = `kpd-${tag}`;
  const host = `kpdh${tag}`;
  const peer = `kpdn${tag}`;
  // A /30 inside 10.213.0.0/16 picked at random, so parallel runs do not collide.
  const base = id[1]! & 0xfc;
  const v4 = (n: number) => `10.213.${id[0]}.${base + n}`;
  const v6 = (n: number) => `fd21:213:${tag.slice(0, 4)}::${n}`;
  await run("ip", ["netns", "add", name]);
  try {
    await run("ip", ["link", "add", host, "type", "veth", "peer", "name", peer]);
    await run("ip", ["link", "set", peer, "netns", name]);
    await run("ip", ["addr", "add", `${v4(1)}/30`, "dev", host]);
    await run("ip", ["addr", "add", `${v6(1)}/64`, "dev", host, "nodad"]);
    await run("ip", ["link", "set", host, "up"]);
    await run("ip", ["-n", name, "addr", "add", `${v4(2)}/30`, "dev", peer]);
    await run("ip", ["-n", name, "addr", "add", `${v6(2)}/64`, "dev", peer, "nodad"]);
    await run("ip", ["-n", name, "link", "set", peer, "up"]);
    await run("ip", ["-n", name, "link", "set", "lo", "up"]);
  } catch (e) {
    await run("ip", ["netns", "del", name]).catch(() => "");
    await run("ip", ["link", "del", host]).catch(() => "");
    throw e;
  }
  return {
    name,
    hostV4: v4(1),
    hostV6: v6(1),
    clientV4: v4(2),
    async request(url, options = {}) {
      const out = await run("ip", [
        "netns",
        "exec",
        name,
        "curl",
        "-sS",
        "-g",
        "--max-time",
        "10",
        ...(options.pathAsIs ? ["--path-as-is"] : []),
        "-X",
        options.method ?? "GET",
        "-w",
        "\n%{http_code}",
        url,
      ]);
      const nl = out.lastIndexOf("\n");
      return { status: Number(out.slice(nl + 1)), body: out.slice(0, nl) };
    },
    async remove() {
      await run("ip", ["netns", "del", name]);
      // Deleting the namespace deletes the peer and with it the host end; make sure.
      await run("ip", ["link", "del", host]).catch(() => "");
    },
  };
}
