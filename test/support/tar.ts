// A minimal ustar writer and a seeded byte stream, enough to build real image layers
// deterministically (fixed mtime, uid/gid 0) without holding large files in memory.
import { createCipheriv, createHash } from "node:crypto";

/** 2020-01-01T00:00:00Z: every fixture file and config uses it, so digests never depend on the clock. */
export const FIXED_EPOCH_SECONDS = 1_577_836_800;

const BLOCK = 512;
const CHUNK = 1 << 20;

/** Content made on the fly: `size` bytes of the keystream for `seed`. */
export interface SeededContent {
  size: number;
  seed: string;
}

export interface TarEntry {
  /** Relative path without a leading slash; directories may end with "/". */
  path: string;
  type: "file" | "dir" | "symlink";
  mode?: number;
  content?: Buffer | string | SeededContent;
  linkname?: string;
}

/**
 * Deterministic pseudo-random bytes: AES-256-CTR keystream keyed by sha256(seed). Native speed
 * (GB/s), incompressible like real binaries, and the same bytes for the same seed on any machine.
 */
export function* seededBytes(seed: string, size: number, chunkSize = CHUNK): Generator<Buffer> {
  const key = createHash("sha256").update(`fixture-prng:${seed}`).digest();
  const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  const zeros = Buffer.alloc(Math.min(chunkSize, Math.max(size, 1)));
  for (let left = size; left > 0;) {
    const n = Math.min(left, zeros.length);
    yield cipher.update(n === zeros.length ? zeros : zeros.subarray(0, n));
    left -= n;
  }
}

function octal(value: number, width: number): string {
  const s = value.toString(8);
  // ustar numeric fields: zero-padded octal and a terminating NUL; 11 digits hold sizes < 8 GiB.
  if (s.length > width - 1) throw new Error(`tar: ${value} does not fit a ${width}-byte octal field`);
  return s.padStart(width - 1, "0") + "\0";
}

function splitName(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: "" };
  const cut = path.lastIndexOf("/", 155);
  const prefix = path.slice(0, cut);
  const name = path.slice(cut + 1);
  if (cut <= 0 || Buffer.byteLength(prefix) > 155 || Buffer.byteLength(name) > 100) {
    throw new Error(`tar: path too long for ustar: ${path}`);
  }
  return { name, prefix };
}

function contentSize(c: TarEntry["content"]): number {
  if (c === undefined) return 0;
  if (typeof c === "string") return Buffer.byteLength(c);
  if (Buffer.isBuffer(c)) return c.length;
  return c.size;
}

export function tarHeader(entry: TarEntry): Buffer {
  const h = Buffer.alloc(BLOCK);
  const path = entry.type === "dir" && !entry.path.endsWith("/") ? `${entry.path}/` : entry.path;
  const { name, prefix } = splitName(path);
  const size = entry.type === "file" ? contentSize(entry.content) : 0;
  const mode = entry.mode ?? (entry.type === "dir" ? 0o755 : entry.type === "symlink" ? 0o777 : 0o644);
  const typeflag = entry.type === "file" ? "0" : entry.type === "dir" ? "5" : "2";
  h.write(name, 0, 100, "utf8");
  h.write(octal(mode, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii");
  h.write(octal(0, 8), 116, "ascii");
  h.write(octal(size, 12), 124, "ascii");
  h.write(octal(FIXED_EPOCH_SECONDS, 12), 136, "ascii");
  h.write("        ", 148, "ascii");
  h.write(typeflag, 156, "ascii");
  if (entry.linkname) h.write(entry.linkname, 157, 100, "utf8");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  h.write("root", 265, "ascii");
  h.write("root", 297, "ascii");
  h.write(octal(0, 8), 329, "ascii");
  h.write(octal(0, 8), 337, "ascii");
  h.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
  return h;
}

/** The tar stream of `entries`, chunk by chunk (large seeded files never sit in memory whole). */
export function* tarStream(entries: TarEntry[]): Generator<Buffer> {
  for (const entry of entries) {
    yield tarHeader(entry);
    if (entry.type !== "file" || entry.content === undefined) continue;
    const c = entry.content;
    const size = contentSize(c);
    if (typeof c === "string") yield Buffer.from(c);
    else if (Buffer.isBuffer(c)) yield c;
    else yield* seededBytes(c.seed, c.size);
    if (size % BLOCK) yield Buffer.alloc(BLOCK - (size % BLOCK));
  }
  // End of archive: two zero blocks.
  yield Buffer.alloc(BLOCK * 2);
}
