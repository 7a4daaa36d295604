/**
 * Listening on a configured address and port, where a failure is a bad setting to report (exit
 * 2, one line naming the flag and its environment variable), not a crash.
 *
 * @module
 */
import { ConfigError } from "./config.ts";

/**
 * Listens (lib/listeners.ts). An address the host does not have is a bad setting (exit 2), not
 * a crash; so is a Deno without `--unstable-net` (SO_REUSEPORT, which the listeners need).
 */
export function listenOn<T>(
  setting: string,
  address: string | undefined,
  port: number,
  listen: () => T,
): T {
  try {
    return listen();
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) throw e;
    const message = (e as Error).message;
    if (/unstable-net/.test(message)) {
      throw new ConfigError(
        "Cannot listen: the listeners need Deno's --unstable-net (SO_REUSEPORT); run with it, " +
          "as deno.json and image/deno-flags.txt do",
      );
    }
    if (address === undefined) {
      const portSetting = setting.replace("ADDRESS", "PORT");
      throw new ConfigError(
        `Cannot listen on every interface, port ${port} (--${
          portSetting.toLowerCase().replace("_", "-")
        } / KUBERNETES_POD_DISCOVERY_${portSetting}): ${message}; ` +
          "choose a free port (one below 1024 needs CAP_NET_BIND_SERVICE) or set an address",
      );
    }
    const flag = setting.toLowerCase().replace("_", "-");
    throw new ConfigError(
      `Cannot listen on --${flag} / KUBERNETES_POD_DISCOVERY_${setting} ` +
        `${JSON.stringify(address)}: ${message}; ` +
        "use an address of this Pod, 127.0.0.1, or leave it unset for every interface",
    );
  }
}
