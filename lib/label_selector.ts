/**
 * Checks a label selector as the API server parses one (apimachinery's `labels.Parse`):
 * comma-separated requirements `key`, `!key`, `key=value` (`==`, `!=`), `key in (a,b)`,
 * `key notin (a,b)`, `key>N`, `key<N`, with keys and values of the label syntax. A selector the
 * server would refuse is a bad setting, said at start: its 400 would otherwise come at the first
 * list and look like any other refusal.
 *
 * @module
 */

/** A label name: 63 characters at most, alphanumeric at both ends. */
const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** A key's prefix: a DNS subdomain, 253 characters at most. */
const PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** What is wrong with `selector`, in a few words; undefined when the API server accepts it. */
export function labelSelectorProblem(selector: string): string | undefined {
  const parts = splitTopLevel(selector);
  if (parts === undefined) return "unbalanced parentheses";
  for (const part of parts) {
    const problem = requirementProblem(part.trim());
    if (problem) return `${JSON.stringify(part.trim())}: ${problem}`;
  }
  return undefined;
}

/** Splits at commas outside parentheses; undefined when parentheses do not pair. */
function splitTopLevel(s: string): string[] | undefined {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "(") depth++;
    if (s[i] === ")" && --depth < 0) return undefined;
    if (s[i] === "," && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  if (depth !== 0) return undefined;
  parts.push(s.slice(start));
  return parts;
}

function requirementProblem(r: string): string | undefined {
  if (r === "") return "an empty requirement (a stray comma?)";
  let m = r.match(/^!\s*(.*)$/);
  if (m) return keyProblem(m[1]!);
  m = r.match(/^(\S+)\s+(in|notin)\s*\((.*)\)$/);
  if (m) {
    const values = m[3]!.split(",").map((v) => v.trim());
    if (m[3]!.trim() === "") return `"${m[2]}" needs at least one value`;
    return keyProblem(m[1]!) ?? values.map(valueProblem).find((p) => p !== undefined);
  }
  m = r.match(/^([^=!<>\s]+)\s*(==|=|!=)\s*(.*)$/);
  if (m) return keyProblem(m[1]!) ?? valueProblem(m[3]!);
  m = r.match(/^([^<>\s]+)\s*([<>])\s*(.*)$/);
  if (m) {
    return keyProblem(m[1]!) ??
      (/^-?\d+$/.test(m[3]!) ? undefined : `"${m[2]}" needs a whole number`);
  }
  return keyProblem(r);
}

function keyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !PREFIX.test(prefix))) {
    return `key prefix ${JSON.stringify(prefix)} is not a lowercase DNS subdomain`;
  }
  if (!NAME.test(name)) {
    return `key ${JSON.stringify(name)} is not a label name (up to 63 letters, digits, ` +
      `"-", "_" or ".", starting and ending with a letter or digit)`;
  }
  return undefined;
}

function valueProblem(value: string): string | undefined {
  if (value === "" || NAME.test(value)) return undefined;
  return `value ${JSON.stringify(value)} is not a label value (up to 63 letters, digits, ` +
    `"-", "_" or ".", starting and ending with a letter or digit)`;
}
