// Sync tag patterns (src/domain/tag-pattern.ts): RE2 syntax, whole-tag matches, linear time, and
// clear refusals of what RE2 leaves out. test/sync.test.ts runs the same patterns over a real sync.
import { describe, expect, it } from "vitest";
import { checkTagPattern, compileTagPattern, type TagPattern } from "../src/domain/tag-pattern.js";

function compiled(pattern: string): TagPattern {
  const p = compileTagPattern(pattern);
  if ("problem" in p) throw new Error(p.problem);
  return p;
}

describe("compileTagPattern", () => {
  it("matches the whole tag, as the anchored ^(?:p)$ did", () => {
    const p = compiled("latest|v1\\..*");
    expect(["latest", "v1.0", "v1.2.3"].filter((t) => p.matches(t))).toEqual(["latest", "v1.0", "v1.2.3"]);
    expect(["latest-rc", "xlatest", "v10", "v2.0"].some((t) => p.matches(t))).toBe(false);
    // An alternation cannot escape the anchoring.
    expect(compiled("a|b").matches("ab")).toBe(false);
    expect(compiled("").matches("")).toBe(true);
  });

  it.each([
    // Catastrophic for a backtracking engine: (a+)+$ on a run of a's ending in something else,
    // (a|aa)*b on a run of a's with no b.
    ["(a+)+$", "a".repeat(128), true],
    ["(a+)+$", `${"a".repeat(127)}b`, false],
    ["(a|aa)*b", "a".repeat(128), false],
    ["(a|aa)*b", `${"a".repeat(127)}b`, true],
    ["(x+x+)+y", "x".repeat(128), false],
    ["(.*a){20}", `${"a".repeat(127)}_`, false],
  ])("%s against a 128-character tag answers %s (linear time: no timeout)", (pattern, tag, expected) => {
    expect(tag).toHaveLength(128);
    expect(compiled(pattern).matches(tag)).toBe(expected);
  });

  it.each([
    ["(v)\\1", "invalid escape sequence: `\\1`"],
    ["(?=v1)v.*", "invalid or unsupported Perl syntax: `(?=`"],
    ["(?!rc).*", "invalid or unsupported Perl syntax: `(?!`"],
    ["(?<=v)1", "`(?<=v)1`"],
    ["v{1001}", "invalid repeat count"],
    ["((v{100}){100})", "invalid repeat count"],
    ["x**", "invalid nested repetition operator"],
    ["[", "missing closing ]"],
    ["a)|(b", "unexpected )"],
    ["v".repeat(257), "at most 256 characters"],
  ])("refuses %j, saying what the engine refused", (pattern, why) => {
    const problem = checkTagPattern(pattern);
    expect(problem).toContain(why);
    if (pattern.length <= 256) expect(problem).toContain("RE2");
  });

  it("takes RE2's own syntax: named groups, classes, flags", () => {
    expect(checkTagPattern("(?P<major>v[0-9]+)\\.[0-9]+")).toBeUndefined();
    expect(compiled("(?i)LATEST").matches("latest")).toBe(true);
    expect(compiled("[[:digit:]]+\\.\\d+").matches("12.3")).toBe(true);
  });
});
