// A manifest reference: a tag or a digest. One parser for /v2/ paths, ImageService requests and
// the upstream client, so "neither a tag nor a digest" means the same everywhere.
import { checkDigest, checkTagName } from "./names.js";
import { digestInvalid, tagInvalid } from "./errors.js";

export type Reference = { tag: string } | { digest: string };

/**
 * A digest when the value has a ":" (tags cannot), a tag otherwise. DomainError digest-invalid or
 * tag-invalid, the message starting with `field`, when it is neither.
 */
export function parseReference(value: string, field = "reference"): Reference {
  if (value === "") throw tagInvalid(`${field}: must not be empty (a tag such as 1.0, or a digest sha256:…)`);
  if (value.includes(":")) {
    const problem = checkDigest(value);
    if (problem) throw digestInvalid(`${field}: neither a tag nor a digest: ${problem}`);
    return { digest: value };
  }
  const problem = checkTagName(value);
  if (problem) throw tagInvalid(`${field}: ${problem}`);
  return { tag: value };
}

/** The reference as written: the tag, or the digest. */
export const referenceText = (reference: Reference): string => ("tag" in reference ? reference.tag : reference.digest);

/** The reference after an image name: `:tag` or `@digest`. */
export const referenceSuffix = (reference: Reference): string => ("tag" in reference ? `:${reference.tag}` : `@${reference.digest}`);
