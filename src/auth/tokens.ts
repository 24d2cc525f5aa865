// API token secrets: `art_` and 32 random bytes in base64url. Only their SHA-256 is stored: a
// secret with 256 bits of entropy needs a fast hash to be looked up by, not a slow one.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Check } from "../domain/names.js";
import { hasControlCharacter } from "../domain/text.js";

export const TOKEN_PREFIX = "art_";
export const MIN_OPERATOR_TOKEN = 32;

export function newTokenSecret(): string {
  return TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

export function hashTokenSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** Constant-time equality of two hex hashes (a secret's hash found by index is checked once more). */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** A token an operator chose (ADMIN_TOKEN): long enough to be a secret, and sendable in a header. */
export const checkOperatorToken: Check = (v) => {
  if (v.length < MIN_OPERATOR_TOKEN) return `must be at least ${MIN_OPERATOR_TOKEN} characters`;
  if (v.length > 512) return "must be at most 512 characters";
  if (hasControlCharacter(v) || /\s/.test(v)) return "must not contain spaces or control characters";
  return undefined;
};
