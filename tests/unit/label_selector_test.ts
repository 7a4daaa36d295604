/** --service-selector is checked at start: a selector the API server would refuse stops the
 * sidecar with one line naming the setting, instead of a 400 at the first list. */
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../lib/config.ts";
import { labelSelectorProblem } from "../../lib/label_selector.ts";

const GOOD = [
  "app=web",
  "app==web",
  "app!=web",
  "app",
  "!app",
  "app in (web,db)",
  "app notin (web, db),tier",
  "example.com/team=shop",
  "app=",
  "tier in (front,),version>3",
  "  app = web , tier != back ",
];
const BAD = [
  "app=web,",
  "app web",
  "app in web",
  "app in ()",
  "-app=web",
  "app=web!",
  "Example.com/app=web",
  `app=${"x".repeat(64)}`,
  "app=(web)",
  "app>three",
  "app in (web,db",
  ",",
];

Deno.test("selectors the API server accepts are accepted", () => {
  for (const s of GOOD) assert.equal(labelSelectorProblem(s), undefined, s);
});

Deno.test("an invalid --service-selector stops the start with one line naming the setting", () => {
  for (const s of BAD) {
    assert.throws(
      () => loadConfig([`--service-selector=${s}`], { env: () => undefined }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, `${s}: ${e}`);
        assert.match(e.message, /^Cannot parse --service-selector: /);
        assert.match(e.message, /is not a label selector/);
        assert.ok(!e.message.includes("\n"));
        return true;
      },
      s,
    );
  }
  const env = (n: string) =>
    n === "KUBERNETES_POD_DISCOVERY_SERVICE_SELECTOR" ? "app web" : undefined;
  assert.throws(() => loadConfig([], { env }), /KUBERNETES_POD_DISCOVERY_SERVICE_SELECTOR/);
});
