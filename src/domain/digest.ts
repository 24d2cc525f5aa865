// Content digests, in one module with one contract: parsing (a digest that is not one is
// DomainError invalid-argument, reason digest-invalid), computing, and checking bytes against a
// digest while they stream. The grammar itself is checkDigest in names.ts, with the other names.
// Every reader of bytes addressed by digest (the content store, the registry core, the upstream
// client) uses this module, so a digest means the same thing everywhere.
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { checkDigest } from "./names.js";
import { dataLoss, digestInvalid } from "./errors.js";

export type DigestAlgorithm = "sha256" | "sha512";

/** `value` when it is a digest of the grammar; DomainError digest-invalid, its message starting with `field`, otherwise. */
export function parseDigest(value: string, field = "digest"): string {
  const problem = checkDigest(value);
  if (problem !== undefined) throw digestInvalid(`${field}: ${problem}`);
  return value;
}

export function isDigest(value: string): boolean {
  return checkDigest(value) === undefined;
}

/** The algorithm of `digest`; DomainError digest-invalid when it is not a digest. */
export function digestAlgorithm(digest: string): DigestAlgorithm {
  return parseDigest(digest).startsWith("sha512:") ? "sha512" : "sha256";
}

export function createDigestHash(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

/** `<algorithm>:<hex>` of a finished hash. */
export function formatDigest(algorithm: DigestAlgorithm, hash: Hash): string {
  return `${algorithm}:${hash.digest("hex")}`;
}

/** The digest of bytes already in memory (manifests, small blobs). */
export function digestOf(bytes: Uint8Array | string, algorithm: DigestAlgorithm = "sha256"): string {
  return formatDigest(algorithm, createHash(algorithm).update(bytes));
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
  // Hashed in line, whatever the size: on this kind of machine a worker thread cost more CPU
  // than the sha256 it moved off the event loop (docs/design-notes.md, "Hashing in line").
  private readonly algorithm: DigestAlgorithm;
  private readonly hash: Hash;
  private count = 0;

  constructor(
    readonly expected: string,
    private readonly options: VerifyOptions = {},
  ) {
    super();
    this.algorithm = digestAlgorithm(expected);
    this.hash = createHash(this.algorithm);
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.count;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.count += chunk.length;
    this.hash.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const what = this.options.what ?? `content ${this.expected}`;
    if (this.options.size !== undefined && this.count !== this.options.size) {
      done(dataLoss(`${what}: expected ${this.options.size} bytes, received ${this.count}`, "size-mismatch"));
      return;
    }
    const actual = formatDigest(this.algorithm, this.hash);
    if (actual !== this.expected) done(dataLoss(`${what}: the bytes received have digest ${actual}, not ${this.expected}`, "digest-mismatch"));
    else done();
  }
}

/** A stream that passes bytes through and fails with data-loss at the end unless they match `digest`. */
export function verifyDigest(digest: string, options?: VerifyOptions): DigestVerifier {
  return new DigestVerifier(digest, options);
}
