// A REMOTE registry's sync tag filter (`sync_filter.tag_pattern`): RE2 syntax, matched against the
// whole tag by re2js, whose automata run in time linear in the tag, so no pattern can stall a sync
// (JavaScript's backtracking RegExp takes exponential time on `(a+)+$` against a long tag). What RE2
// leaves out (backreferences, lookahead and lookbehind) is refused with the engine's own words.
import { RE2JS, RE2JSException, RE2JSSyntaxException } from "re2js";
import type { Check } from "./names.js";

const MAX_TAG_PATTERN = 256;

export interface TagPattern {
  /** The pattern as written. */
  readonly source: string;
  /** Whether the whole tag matches. */
  matches(tag: string): boolean;
}

/** The pattern compiled, or why the engine cannot take it (a message without the field name). */
export function compileTagPattern(pattern: string): TagPattern | { problem: string } {
  if (pattern.length > MAX_TAG_PATTERN) return { problem: `at most ${MAX_TAG_PATTERN} characters` };
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    if (!(err instanceof RE2JSException)) throw err;
    const detail = err instanceof RE2JSSyntaxException ? err.message.replace(/^error parsing regexp: /, "") : err.message;
    return {
      problem: `not a regular expression the RE2 engine takes (${detail}); RE2 syntax has no backreferences, lookahead or lookbehind`,
    };
  }
  return { source: pattern, matches: (tag) => re.testExact(tag) };
}

export const checkTagPattern: Check = (pattern) => {
  const compiled = compileTagPattern(pattern);
  return "problem" in compiled ? compiled.problem : undefined;
};

// Patterns compiled once per process: compiling the heaviest RE2 takes tens of milliseconds, a
// match well under 0.01 ms (docs/design-notes.md, "Sync tag patterns are RE2"). Rules and policies
// are few and change rarely; the map is cleared rather than grown past its bound.
const compiled = new Map<string, TagPattern | { problem: string }>();
const COMPILED_MAX = 1024;

/** compileTagPattern(), remembered. */
export function cachedTagPattern(pattern: string): TagPattern | { problem: string } {
  let result = compiled.get(pattern);
  if (result === undefined) {
    result = compileTagPattern(pattern);
    if (compiled.size >= COMPILED_MAX) compiled.clear();
    compiled.set(pattern, result);
  }
  return result;
}
