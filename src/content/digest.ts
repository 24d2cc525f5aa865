// Digest algorithms the content store accepts, and hashing with them. The digest grammar itself
// lives in src/domain/names.ts (checkDigest); this module only turns a valid digest into a hash.
import { createHash, type Hash } from "node:crypto";
import { DomainError } from "../domain/errors.js";
import { checkDigest } from "../domain/names.js";

export type DigestAlgorithm = "sha256" | "sha512";

/** The algorithm of `digest`; DomainError invalid-argument when the digest is not valid. */
export function digestAlgorithm(digest: string): DigestAlgorithm {
  const problem = checkDigest(digest);
  if (problem !== undefined) throw new DomainError("invalid-argument", `digest ${problem}`);
  return digest.startsWith("sha512:") ? "sha512" : "sha256";
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
