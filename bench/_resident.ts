/**
 * Where a process's file-backed resident memory comes from: which sections of the `deno` binary
 * it maps have pages in memory. RssFile says only "pages of mapped files"; this tells the
 * runtime's code (`.text`: more of it is in memory the more of Deno's native code runs, e.g. TLS
 * and the HTTP client) from its read-only data (`.rodata`: V8's snapshot, ICU's data).
 * Reads the binary's ELF section headers and `/proc/PID/pagemap` (root only: undefined
 * otherwise).
 *
 * @module
 */

/** Resident MB of the `deno` binary's mapped pages, by section. */
export interface BinaryResident {
  textMB: number;
  rodataMB: number;
  /** Every other section (relocations, data). */
  restMB: number;
}

interface Section {
  name: string;
  offset: number;
  size: number;
}

const PAGE = 4096;
let cached: { path: string; sections: Section[] } | undefined;

/** The section headers of a 64-bit little-endian ELF file. */
function sectionsOf(path: string): Section[] {
  if (cached?.path === path) return cached.sections;
  const file = Deno.openSync(path);
  try {
    const read = (at: number, n: number): DataView => {
      const buf = new Uint8Array(n);
      file.seekSync(at, Deno.SeekMode.Start);
      let got = 0;
      while (got < n) got += file.readSync(buf.subarray(got)) ?? n;
      return new DataView(buf.buffer);
    };
    const h = read(0, 64);
    const shoff = Number(h.getBigUint64(0x28, true));
    const [shentsize, shnum, shstrndx] = [0x3a, 0x3c, 0x3e].map((o) => h.getUint16(o, true));
    const table = read(shoff, shentsize! * shnum!);
    const raw = Array.from({ length: shnum! }, (_, i) => ({
      nameAt: table.getUint32(i * shentsize!, true),
      offset: Number(table.getBigUint64(i * shentsize! + 24, true)),
      size: Number(table.getBigUint64(i * shentsize! + 32, true)),
    }));
    const strtab = raw[shstrndx!]!;
    const names = new Uint8Array(read(strtab.offset, strtab.size).buffer);
    const nameAt = (at: number) =>
      new TextDecoder().decode(names.subarray(at, names.indexOf(0, at)));
    const sections = raw.filter((s) => s.size > 0).map((s) => ({
      name: nameAt(s.nameAt),
      offset: s.offset,
      size: s.size,
    }));
    cached = { path, sections };
    return sections;
  } finally {
    file.close();
  }
}

/** Resident pages of `binary` (default: this Deno) in process `pid`, by section. */
export function binaryResident(pid: number, binary = Deno.execPath()): BinaryResident | undefined {
  let pagemap: Deno.FsFile;
  try {
    pagemap = Deno.openSync(`/proc/${pid}/pagemap`);
  } catch {
    return undefined;
  }
  try {
    const sections = sectionsOf(binary);
    const kb = { text: 0, rodata: 0, rest: 0 };
    for (const line of Deno.readTextFileSync(`/proc/${pid}/maps`).split("\n")) {
      const m = line.match(/^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s+(.*)$/);
      if (!m || m[4] !== binary) continue;
      const [start, end, offset] = [m[1]!, m[2]!, m[3]!].map((x) => parseInt(x, 16));
      const pages = (end! - start!) / PAGE;
      const entries = new Uint8Array(pages * 8);
      pagemap.seekSync((start! / PAGE) * 8, Deno.SeekMode.Start);
      let got = 0;
      while (got < entries.length) {
        const n = pagemap.readSync(entries.subarray(got));
        if (!n) break;
        got += n;
      }
      const view = new DataView(entries.buffer);
      for (let i = 0; i < got / 8; i++) {
        // Bit 63: the page is present in memory.
        if (!(view.getUint8(i * 8 + 7) & 0x80)) continue;
        const at = offset! + i * PAGE;
        const s = sections.find((s) => at >= s.offset && at < s.offset + s.size);
        if (s?.name === ".text") kb.text += 4;
        else if (s?.name === ".rodata") kb.rodata += 4;
        else kb.rest += 4;
      }
    }
    const mb = (k: number) => Math.round(k * 1024 / 1e5) / 10;
    return { textMB: mb(kb.text), rodataMB: mb(kb.rodata), restMB: mb(kb.rest) };
  } catch {
    return undefined;
  } finally {
    pagemap.close();
  }
}
