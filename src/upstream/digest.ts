// Content digests: parsing, computing, and checking bytes against a digest while they stream.
// Every byte that crosses from an upstream to a caller is addressed by digest, so every reader
// (GetBlob, the pull-through proxy, sync, the content store) verifies with the same code.
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { checkDigest } from "../domain/names.js";
import { DomainError } from "../domain/errors.js";

export type DigestAlgorithm = "sha256" | "sha512";

export function digestAlgorithm(digest: string): DigestAlgorithm | undefined {
  if (checkDigest(digest) !== undefined) return undefined;
  return digest.startsWith("sha512:") ? "sha512" : "sha256";
}

export function isDigest(reference: string): boolean {
  return digestAlgorithm(reference) !== undefined;
}

export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

export interface VerifyOptions {
  /** Expected total size; a different count fails too (reason size-mismatch). */
  size?: number;
  /** What the bytes are, for the error message, e.g. "blob sha256:… of team/app from registry.example". */
  what?: string;
}

/**
 * A pass-through Transform that hashes what flows through it and, at the end, fails with
 * DomainError data-loss when the bytes do not match `digest` (or `options.size`). A consumer
 * of the stream therefore sees either every correct byte and a clean end, or an error: never a
 * silent truncation or a corrupted blob. Backpressure passes through unchanged.
 */
export class DigestVerifier extends Transform {
  private readonly hash: Hash;
  private count = 0;

  constructor(
    readonly expected: string,
    private readonly options: VerifyOptions = {},
  ) {
    super();
    const algorithm = digestAlgorithm(expected);
    if (!algorithm) throw new DomainError("invalid-argument", `${JSON.stringify(expected)} is not a digest (expected sha256:<64 hex> or sha512:<128 hex>)`);
    this.hash = createHash(algorithm);
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.count;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.count += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const what = this.options.what ?? `content ${this.expected}`;
    if (this.options.size !== undefined && this.count !== this.options.size) {
      done(new DomainError("data-loss", `${what}: expected ${this.options.size} bytes, received ${this.count}`, { reason: "size-mismatch" }));
      return;
    }
    const actual = `${this.expected.slice(0, this.expected.indexOf(":"))}:${this.hash.digest("hex")}`;
    if (actual !== this.expected) {
      done(new DomainError("data-loss", `${what}: the bytes received have digest ${actual}, not ${this.expected}`, { reason: "digest-mismatch" }));
      return;
    }
    done();
  }
}

/** A stream that passes bytes through and fails with data-loss at the end unless they match `digest`. */
export function verifyDigest(digest: string, options?: VerifyOptions): DigestVerifier {
  return new DigestVerifier(digest, options);
}
