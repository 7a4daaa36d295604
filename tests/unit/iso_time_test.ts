import assert from "node:assert/strict";
import { isoTime } from "../../lib/iso_time.ts";
import { prng } from "../support/history/schedule.ts";

Deno.test("isoTime writes what Date's toISOString writes, on edge days and 100,000 seeded times", () => {
  const edges = [
    0,
    -1,
    951_782_400_000, // 2000-02-29
    4_107_542_400_000, // 2100-03-01
    253_402_300_799_999, // 9999-12-31T23:59:59.999Z
    -62_167_219_200_000, // 0000-01-01
    1_795_801_126_771.6, // a fraction of a millisecond is dropped, as by Date
  ];
  for (const ms of edges) {
    assert.equal(isoTime(ms), new Date(Math.floor(ms)).toISOString(), `${ms}`);
  }
  const seed = 20261127;
  const random = prng(seed);
  console.log(`seed ${seed}`);
  for (let i = 0; i < 100_000; i++) {
    const ms = Math.floor((random() * 2 - 0.5) * 8_000_000_000_000);
    assert.equal(isoTime(ms), new Date(ms).toISOString(), `seed ${seed}, ${ms}`);
  }
});
