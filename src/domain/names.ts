// The name grammar, in one place. Everything that reaches SQL or the file system has passed
// through here first.
import { hasControlCharacter } from "./text.js";

const REGISTRY = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
// One path component of an OCI repository name (distribution-spec §Pulling manifests).
const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// RFC 6838 restricted-name: type "/" subtype, optional parameters are not part of a descriptor's media type.
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

const MAX_REGISTRY_NAME = 63;
export const MAX_IMAGE_NAME = 255;
const MAX_DESCRIPTION = 1024;

/** Why `value` is not acceptable, or undefined when it is. Messages do not repeat the field name. */
export type Check = (value: string) => string | undefined;

function describe(value: string): string {
  // Show the value only when it is short and printable, never control characters.
  return value.length <= 80 && !hasControlCharacter(value) ? `"${value}" is not valid` : "is not valid";
}

const EMPTY = "must not be empty";

export const checkRegistryName: Check = (v) => {
  if (v === "") return EMPTY;
  if (v.length > MAX_REGISTRY_NAME) return `must be at most ${MAX_REGISTRY_NAME} characters (got ${v.length})`;
  if (!REGISTRY.test(v)) return `${describe(v)}: lower-case letters and digits, separated by single hyphens`;
  return undefined;
};

export const checkPathComponent: Check = (v) => {
  if (v === "") return EMPTY;
  if (v.length > MAX_IMAGE_NAME) return `must be at most ${MAX_IMAGE_NAME} characters (got ${v.length})`;
  if (!COMPONENT.test(v)) {
    return `${describe(v)}: lower-case letters and digits, separated by ".", "_", "__" or hyphens`;
  }
  return undefined;
};

export const checkRepositoryName: Check = (v) => {
  if (v === "") return EMPTY;
  if (v.length > MAX_IMAGE_NAME) return `must be at most ${MAX_IMAGE_NAME} characters (got ${v.length})`;
  if (!v.split("/").every((c) => COMPONENT.test(c))) {
    return `${describe(v)}: one or more "/"-separated components of lower-case letters and digits, separated by ".", "_", "__" or hyphens`;
  }
  return undefined;
};

export const checkTagName: Check = (v) =>
  v === "" ? EMPTY : TAG.test(v) ? undefined : `${describe(v)}: 1 to 128 of letters, digits, "_", "." and "-", not starting with "." or "-"`;

export const checkDigest: Check = (v) =>
  v === "" ? EMPTY : DIGEST.test(v) ? undefined : `${describe(v)}: expected "sha256:" and 64 lower-case hex digits (or "sha512:" and 128)`;

export const checkUuid: Check = (v) => (v === "" ? EMPTY : UUID.test(v) ? undefined : `${describe(v)}: expected a UUID`);

export const checkMediaType: Check = (v) =>
  v === "" || MEDIA_TYPE.test(v) ? undefined : `${describe(v)}: expected a media type such as application/vnd.oci.image.manifest.v1+json`;

export const checkDescription: Check = (v) => (v.length > MAX_DESCRIPTION ? `must be at most ${MAX_DESCRIPTION} characters (got ${v.length})` : undefined);

// Accounts (users and robots share one name space): docs/identity.md.
const ACCOUNT = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/;
const MAX_TOKEN_NAME = 128;

export const checkAccountName: Check = (v) =>
  v === ""
    ? EMPTY
    : ACCOUNT.test(v)
      ? undefined
      : `${describe(v)}: 1 to 64 of lower-case letters, digits, ".", "_" and "-", starting and ending with a letter or digit`;

/** What an API token is for: printable text for people. */
export const checkTokenName: Check = (v) => {
  if (v === "") return EMPTY;
  if (v.length > MAX_TOKEN_NAME) return `must be at most ${MAX_TOKEN_NAME} characters (got ${v.length})`;
  if (hasControlCharacter(v)) return "must not contain control characters";
  return undefined;
};

const MIN_PASSWORD = 10;
const MAX_PASSWORD = 1024;
const MIN_OPERATOR_TOKEN = 32;

/** Passwords: long enough, and text a form or a header can carry. The value is never echoed. */
export const checkPassword: Check = (v) => {
  if (v.length < MIN_PASSWORD) return `must be at least ${MIN_PASSWORD} characters`;
  if (v.length > MAX_PASSWORD) return `must be at most ${MAX_PASSWORD} characters`;
  if (hasControlCharacter(v)) return "must not contain control characters";
  return undefined;
};

/** A token an operator chose (ADMIN_TOKEN): long enough to be a secret, and sendable in a header. Never echoed. */
export const checkOperatorToken: Check = (v) => {
  if (v.length < MIN_OPERATOR_TOKEN) return `must be at least ${MIN_OPERATOR_TOKEN} characters`;
  if (v.length > 512) return "must be at most 512 characters";
  if (hasControlCharacter(v) || /\s/.test(v)) return "must not contain spaces or control characters";
  return undefined;
};
