// The streaming digest check, for small content and big (the sizes a pull-through relays): the
// same answers either way, and a broken stream never hangs.
import { createHash, randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { DomainError } from "../src/domain/errors.js";
import { verifyDigest } from "../src/domain/digest.js";

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const sha512 = (b: Buffer) => `sha512:${createHash("sha512").update(b).digest("hex")}`;

function chunks(bytes: Buffer, size: number): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
    })(),
  );
}

async function run(bytes: Buffer, digest: string, chunkSize: number, size = bytes.length): Promise<{ out: Buffer; error?: unknown }> {
  const parts: Buffer[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, cb) => (parts.push(Buffer.from(c)), cb()) });
  try {
    await pipeline(chunks(bytes, chunkSize), verifyDigest(digest, { size, what: "test blob" }), sink);
    return { out: Buffer.concat(parts) };
  } catch (error) {
    return { out: Buffer.concat(parts), error };
  }
}

describe.each([
  ["small", 256 * 1024],
  ["big", 24 * 1024 * 1024 + 7],
])("verifyDigest %s", (_how, length) => {
  const bytes = randomBytes(length);

  it("passes every byte of matching content, in any chunking, for sha256 and sha512", async () => {
    for (const chunkSize of [1000, 64 * 1024, 3 * 1024 * 1024]) {
      const { out, error } = await run(bytes, sha256(bytes), chunkSize);
      expect(error).toBeUndefined();
      expect(out.equals(bytes)).toBe(true);
    }
    expect((await run(bytes, sha512(bytes), 100_000)).error).toBeUndefined();
  });

  it("fails with DATA_LOSS when one byte differs", async () => {
    const corrupt = Buffer.from(bytes);
    corrupt[Math.floor(length / 2)]! ^= 1;
    const { error } = await run(corrupt, sha256(bytes), 64 * 1024);
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({ kind: "data-loss", reason: "digest-mismatch" });
  });

  it("fails with DATA_LOSS when the size differs", async () => {
    const { error } = await run(bytes.subarray(0, length - 1), sha256(bytes), 64 * 1024, length);
    expect(error).toMatchObject({ kind: "data-loss", reason: "size-mismatch" });
  });

  it("ends cleanly when the source breaks mid-way (no hang, the error surfaces)", async () => {
    const source = new Readable({ read() {} });
    source.push(bytes.subarray(0, Math.min(length, 4 * 1024 * 1024)));
    setTimeout(() => source.destroy(new Error("upstream went away")), 20);
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    await expect(pipeline(source, verifyDigest(sha256(bytes), { size: length }), sink)).rejects.toThrow("upstream went away");
  });
});

describe("verifyDigest of big blobs, many at once", () => {
  it("keeps each blob's hash to itself", async () => {
    const blobs = Array.from({ length: 6 }, () => randomBytes(9 * 1024 * 1024));
    const results = await Promise.all(blobs.map((b, i) => run(b, sha256(blobs[(i + (i % 2)) % blobs.length]!), 256 * 1024)));
    results.forEach((r, i) => {
      if (i % 2 === 0) expect(r.error).toBeUndefined();
      else expect(r.error).toMatchObject({ kind: "data-loss" });
    });
  });
});
