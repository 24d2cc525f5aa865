// Rules for free text, in one place: what PostgreSQL cannot store, and what counts as a control
// character in the fields that must be printable (names, credentials, query parameters).

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
// With the u flag a string is read by code points: only an unpaired surrogate is one of category Cs.
const LONE_SURROGATE = /\p{Cs}/u;

/** ASCII control characters (C0 and DEL): never part of a name, a credential or a query value. */
export function hasControlCharacter(value: string): boolean {
  return CONTROL.test(value);
}

// eslint-disable-next-line no-control-regex
const CONTROL_RUNS = /[\u0000-\u001f\u007f]+/g;

/** `value` as one line of printable text: runs of control characters (newlines too) become a space. */
export function printableLine(value: string): string {
  return value.replace(CONTROL_RUNS, " ").trim();
}

/**
 * Why `value` cannot be stored as text, or undefined when it can. PostgreSQL refuses NUL in text
 * (a client's mistake, not a 500), and a lone UTF-16 surrogate would be stored as U+FFFD: the
 * value would read back changed.
 */
export function checkStorableText(value: string): string | undefined {
  if (value.includes("\u0000")) return "must not contain NUL (U+0000) characters";
  if (LONE_SURROGATE.test(value)) return "is not valid Unicode (it contains a lone surrogate)";
  return undefined;
}
