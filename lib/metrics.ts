/**
 * Prometheus metrics in the text exposition format, written small: counters, gauges read at
 * scrape time, and one latency histogram. Names start with `kpd_`.
 *
 * @module
 */

/** Upper bounds (seconds) of the request-latency histogram: a localhost cache answers in well
 * under a millisecond, so the buckets are fine at the low end. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1];

/** Label names and values of one series. */
export type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`
  );
  return parts.length ? `{${parts.join(",")}}` : "";
}

/** One series of the latency histogram: counts per bucket of {@linkcode LATENCY_BUCKETS}. */
export class Histogram {
  /** The series' labels. */
  readonly labels: Labels;
  /** Observations at or below each bound (cumulative, as the exposition writes them). */
  readonly counts: number[] = LATENCY_BUCKETS.map(() => 0);
  /** Sum of the observations (seconds). */
  sum = 0;
  /** Number of observations. */
  count = 0;

  /** An empty series with these labels. */
  constructor(labels: Labels) {
    this.labels = labels;
  }

  /** Records one observation (seconds). */
  observe(seconds: number): void {
    // Buckets are cumulative: every bound from the first one it fits under counts it.
    for (let i = LATENCY_BUCKETS.length - 1; i >= 0 && seconds <= LATENCY_BUCKETS[i]!; i--) {
      this.counts[i]!++;
    }
    this.sum += seconds;
    this.count++;
  }
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
  #hist = new Map<string, Histogram>();

  /** Declares a counter; {@linkcode inc} adds to it. */
  counter(name: string, help: string): void {
    const values = new Map<string, [Labels, number]>();
    this.#counters.set(name, values);
    this.#families.set(name, { type: "counter", help, samples: () => [...values.values()] });
  }

  /** Adds `by` (default 1) to a counter's series with these labels. */
  inc(name: string, labels: Labels = {}, by = 1): void {
    this.series(name, labels)[1] += by;
  }

  /** The series of a counter with these labels, `[labels, value]`: a caller that counts often
   * keeps it and adds to `[1]` directly, with no lookup per count. */
  series(name: string, labels: Labels = {}): [Labels, number] {
    const values = this.#counters.get(name);
    if (!values) throw new RangeError(`Metric ${name} is not declared`);
    // The key only needs to tell series apart; escaping waits for the scrape.
    const key = Object.values(labels).join("\u0000");
    let cur = values.get(key);
    if (!cur) values.set(key, cur = [labels, 0]);
    return cur;
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
    this.histogram(name, labels).observe(seconds);
  }

  /** The request-latency histogram of these labels: a caller that observes often keeps it. */
  histogram(name: string, labels: Labels): Histogram {
    const key = `${name}\u0000${Object.values(labels).join("\u0000")}`;
    let h = this.#hist.get(key);
    if (!h) {
      h = new Histogram(labels);
      this.#hist.set(key, h);
      if (!this.#families.has(name)) {
        this.#families.set(name, {
          type: "histogram",
          help: "HTTP request latency in seconds, by route",
          samples: () => [],
        });
      }
    }
    return h;
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
