/**
 * Prometheus metrics in the text exposition format, written small: counters, gauges read at
 * scrape time, and one latency histogram. Names start with `kpd_`.
 *
 * @module
 */

/** Upper bounds (seconds) of the request-latency histogram: a localhost cache answers in well
 * under a millisecond, so the buckets are fine at the low end. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1];

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`
  );
  return parts.length ? `{${parts.join(",")}}` : "";
}

/** A family of metrics sharing a name, type and help text. */
interface Family {
  type: "counter" | "gauge" | "histogram";
  help: string;
  samples: () => [Labels, number][];
}

/** The metrics of one process. */
export class Metrics {
  #families = new Map<string, Family>();
  #counters = new Map<string, Map<string, [Labels, number]>>();
  #hist = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();

  /** Declares a counter; {@linkcode inc} adds to it. */
  counter(name: string, help: string): void {
    const values = new Map<string, [Labels, number]>();
    this.#counters.set(name, values);
    this.#families.set(name, { type: "counter", help, samples: () => [...values.values()] });
  }

  /** Adds `by` (default 1) to a counter's series with these labels. */
  inc(name: string, labels: Labels = {}, by = 1): void {
    const values = this.#counters.get(name);
    if (!values) throw new RangeError(`Metric ${name} is not declared`);
    // The key only needs to tell series apart; escaping waits for the scrape.
    const key = Object.values(labels).join("\u0000");
    const cur = values.get(key);
    if (cur) cur[1] += by;
    else values.set(key, [labels, by]);
  }

  /** Declares a gauge (or a counter kept elsewhere) whose samples are read at scrape time. */
  gauge(
    name: string,
    help: string,
    samples: () => [Labels, number][],
    type: "gauge" | "counter" = "gauge",
  ): void {
    this.#families.set(name, { type, help, samples });
  }

  /** Records one observation (seconds) in the request-latency histogram. */
  observe(name: string, labels: Labels, seconds: number): void {
    const key = `${name}\u0000${Object.values(labels).join("\u0000")}`;
    let h = this.#hist.get(key);
    if (!h) {
      h = { labels, counts: LATENCY_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.#hist.set(key, h);
      if (!this.#families.has(name)) {
        this.#families.set(name, {
          type: "histogram",
          help: "HTTP request latency in seconds, by route",
          samples: () => [],
        });
      }
    }
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      if (seconds <= LATENCY_BUCKETS[i]!) h.counts[i]!++;
    }
    h.sum += seconds;
    h.count++;
  }

  /** The whole exposition, `text/plain; version=0.0.4`. */
  render(): string {
    const out: string[] = [];
    for (const [name, f] of this.#families) {
      out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      if (f.type === "histogram") {
        for (const [key, h] of this.#hist) {
          if (!key.startsWith(`${name}\u0000`)) continue;
          LATENCY_BUCKETS.forEach((le, i) =>
            out.push(`${name}_bucket${labelText({ ...h.labels, le: String(le) })} ${h.counts[i]}`)
          );
          out.push(`${name}_bucket${labelText({ ...h.labels, le: "+Inf" })} ${h.count}`);
          out.push(`${name}_sum${labelText(h.labels)} ${h.sum}`);
          out.push(`${name}_count${labelText(h.labels)} ${h.count}`);
        }
        continue;
      }
      for (const [labels, v] of f.samples()) out.push(`${name}${labelText(labels)} ${v}`);
    }
    return out.join("\n") + "\n";
  }
}
