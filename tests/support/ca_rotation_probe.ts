/**
 * A child process for tests/unit/ca_rotation_test.ts: lays out a service-account directory as
 * the kubelet does (`ca.crt` -> `..data/ca.crt`, `..data` -> a timestamped directory), connects
 * in-cluster to `https://127.0.0.1:PORT` with lib/kube_client.ts and requests /version; then
 * rotates ca.crt the kubelet's way (a new directory, `..data` swapped by a rename, the old one
 * removed), makes the connection anew as after a failure (`reset()`), and requests again. Prints
 * "accepted" or "refused" for each request, space-separated. Its own process because Deno builds
 * its root store once per process. Arguments: PORT FIRST_CA SECOND_CA (paths; SECOND_CA may be
 * `A+B`, a bundle of both).
 *
 * @module
 */
import { connect } from "../../lib/kube_client.ts";

const [port, first, second] = Deno.args;
const dir = await Deno.makeTempDir({ prefix: "kpd-sa-" });
const version = async (name: string, ca: string) => {
  await Deno.mkdir(`${dir}/${name}`);
  const pem = await Promise.all(ca.split("+").map((f) => Deno.readTextFile(f)));
  await Deno.writeTextFile(`${dir}/${name}/ca.crt`, pem.join(""));
  await Deno.writeTextFile(`${dir}/${name}/token`, "t");
  await Deno.symlink(name, `${dir}/..data_tmp`);
  await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`);
};
try {
  await version("..2026_01", first!);
  await Deno.symlink("..data/ca.crt", `${dir}/ca.crt`);
  await Deno.symlink("..data/token", `${dir}/token`);
  const env: Record<string, string> = {
    KUBERNETES_SERVICE_HOST: "127.0.0.1",
    KUBERNETES_SERVICE_PORT: port!,
  };
  const conn = await connect({ serviceAccountDir: dir, env: (n) => env[n] });
  const request = async () => {
    try {
      const r = await conn.fetch("/version");
      await r.body?.cancel();
      return "accepted";
    } catch {
      return "refused";
    }
  };
  const answers = [await request()];
  await version("..2026_02", second!);
  await Deno.remove(`${dir}/..2026_01`, { recursive: true });
  conn.reset();
  answers.push(await request());
  conn.close();
  console.log(answers.join(" "));
} finally {
  await Deno.remove(dir, { recursive: true });
}
