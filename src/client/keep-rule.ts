// A retention keep rule (retention.proto's KeepRule) in its three forms: the message, the tree the
// service decides with, and the text people write and read
// (`any_of(most_recent(10), pushed_within(7d))`). The service and the `artifact` CLI share this one
// module, so they cannot parse or print a rule differently. It lives with the client because the
// CLI ships in @artifact-service/client, which holds no server code and no regular-expression
// engine: every check is here except compiling a tag pattern, which the service does (RE2,
// src/domain/tag-pattern.ts) through the `checkPattern` it passes in. Pure: no I/O.
//
// A rule that breaks a check throws KeepRuleError naming the field path
// (`retention_policy.keep.any_of.rules[1].most_recent.count: …`); the service answers it as
// INVALID_ARGUMENT, the CLI as a usage error.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Duration } from "@bufbuild/protobuf/wkt";
import type { KeepRule as KeepRuleMessage, KeepRuleSchema } from "../../gen/artifact/v1/retention_pb.js";

export type KeepRule =
  | { allOf: KeepRule[] }
  | { anyOf: KeepRule[] }
  | { not: KeepRule }
  | { matching: { tagPattern: string } }
  | { mostRecent: { count: number; tagPattern?: string } }
  | { pushedWithin: { ms: number } }
  | { pulledWithin: { ms: number } };

/** Bounds of a rule tree: nesting and total size, so a policy stays readable and cheap to decide. */
const KEEP_MAX_DEPTH = 8;
const KEEP_MAX_RULES = 64;
const MOST_RECENT_MAX = 1_000_000;
const WITHIN_MIN_MS = 1_000;
/** The longest duration a rule (or a policy's untagged grace) takes: 100 years. */
export const WITHIN_MAX_MS = 100 * 365 * 86_400_000;

/** A keep rule (or a duration of a policy) that breaks a check; the message names the field path. */
export class KeepRuleError extends Error {
  override name = "KeepRuleError";
}

/** Checks one non-empty tag pattern at `path`, throwing KeepRuleError; the service's compiles it. */
export type PatternCheck = (path: string, pattern: string) => void;

const noPatternCheck: PatternCheck = () => {};

/** The units a duration is written in (`7d`, `12h`, `90m`, `45s`, `1500ms`), in milliseconds. */
export const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const LARGEST_FIRST = (["d", "h", "m", "s"] as const).map((unit) => [unit, UNIT_MS[unit]] as const);

/** `7d`, `36h`, `90m`, `45s`, `1500ms`: the largest unit that divides the duration. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of LARGEST_FIRST) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export function checkDuration(path: string, ms: number, min: number, max: number): void {
  if (!Number.isFinite(ms) || ms < min || ms > max) {
    throw new KeepRuleError(`${path}: must be from ${formatDuration(min)} to ${formatDuration(max)} (got ${Number.isFinite(ms) ? formatDuration(ms) : ms})`);
  }
}

/** A Duration as whole milliseconds; `path` names it in errors. */
export function durationMs(path: string, d: Duration | undefined): number {
  if (!d) throw new KeepRuleError(`${path}: required`);
  if (d.seconds < 0n || d.nanos < 0) throw new KeepRuleError(`${path}: must be positive`);
  return Number(d.seconds) * 1000 + Math.trunc(d.nanos / 1_000_000);
}

export const msDuration = (ms: number): { seconds: bigint; nanos: number } => ({
  seconds: BigInt(Math.floor(ms / 1000)),
  nanos: (ms % 1000) * 1_000_000,
});

/** Counts rules and levels while a tree is built or walked: a tree over the bounds stops there. */
function shapeBounds() {
  let count = 0;
  return (at: string, depth: number) => {
    if (++count > KEEP_MAX_RULES) failAt(at, `a keep rule has at most ${KEEP_MAX_RULES} rules in all`);
    if (depth > KEEP_MAX_DEPTH) failAt(at, `a keep rule nests at most ${KEEP_MAX_DEPTH} levels deep`);
  };
}

function failAt(at: string, what: string): never {
  throw new KeepRuleError(`${at}: ${what}`);
}

/** Checks a rule tree's shape and values, `path` being the tree's own (e.g. `retention_policy.keep`). */
export function checkKeepRule(path: string, rule: KeepRule, checkPattern: PatternCheck = noPatternCheck): void {
  const bound = shapeBounds();
  const pattern = (at: string, source: string, emptyAllowed: boolean) => {
    if (source === "") {
      if (emptyAllowed) return;
      failAt(at, "must not be empty: an RE2 regular expression matched against the whole tag name, e.g. v[0-9]+\\..*");
    }
    checkPattern(at, source);
  };
  const visit = (node: KeepRule, at: string, depth: number): void => {
    bound(at, depth);
    if ("allOf" in node || "anyOf" in node) {
      const [field, list] = "allOf" in node ? ["all_of", node.allOf] : ["any_of", node.anyOf];
      list.forEach((child, i) => visit(child, `${at}.${field}.rules[${i}]`, depth + 1));
    } else if ("not" in node) {
      visit(node.not, `${at}.not`, depth + 1);
    } else if ("matching" in node) {
      pattern(`${at}.matching.tag_pattern`, node.matching.tagPattern, false);
    } else if ("mostRecent" in node) {
      const { count: n, tagPattern } = node.mostRecent;
      if (!Number.isInteger(n) || n < 1 || n > MOST_RECENT_MAX) failAt(`${at}.most_recent.count`, `must be from 1 to ${MOST_RECENT_MAX} (got ${n})`);
      if (tagPattern !== undefined) pattern(`${at}.most_recent.tag_pattern`, tagPattern, true);
    } else {
      const [field, ms] = "pushedWithin" in node ? ["pushed_within", node.pushedWithin.ms] : ["pulled_within", node.pulledWithin.ms];
      checkDuration(`${at}.${field}.duration`, ms, WITHIN_MIN_MS, WITHIN_MAX_MS);
    }
  };
  visit(rule, path, 1);
}

/** A rule as people read it: `any_of(most_recent(10), pushed_within(7d))`. */
export function describeKeepRule(rule: KeepRule): string {
  if ("allOf" in rule) return `all_of(${rule.allOf.map(describeKeepRule).join(", ")})`;
  if ("anyOf" in rule) return `any_of(${rule.anyOf.map(describeKeepRule).join(", ")})`;
  if ("not" in rule) return `not(${describeKeepRule(rule.not)})`;
  if ("matching" in rule) return `matching(${JSON.stringify(rule.matching.tagPattern)})`;
  if ("mostRecent" in rule) {
    const p = rule.mostRecent.tagPattern;
    return `most_recent(${rule.mostRecent.count}${p ? `, ${JSON.stringify(p)}` : ""})`;
  }
  if ("pushedWithin" in rule) return `pushed_within(${formatDuration(rule.pushedWithin.ms)})`;
  return `pulled_within(${formatDuration(rule.pulledWithin.ms)})`;
}

/**
 * The text form describeKeepRule() writes, read back (the CLI's --keep):
 * `any_of(most_recent(10), pushed_within(7d), all_of(matching("dev-.*"), not(pulled_within(30d))))`.
 * Patterns are JSON strings; durations a whole number and a unit (ms, s, m, h, d). The rule is
 * checked (checkKeepRule) with `field` as its path; a syntax error names the position.
 */
export function parseKeepRule(text: string, field = "keep", checkPattern: PatternCheck = noPatternCheck): KeepRule {
  let at = 0;
  const fail = (what: string): never => {
    throw new KeepRuleError(`${field}: ${what} at character ${at + 1} of ${JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text)}`);
  };
  const space = () => {
    while (at < text.length && /\s/.test(text[at]!)) at++;
  };
  const expect = (c: string) => {
    space();
    if (text[at] !== c) fail(`expected ${JSON.stringify(c)}`);
    at++;
  };
  const word = (): string => {
    space();
    const m = /^[a-z_]+/.exec(text.slice(at));
    if (!m) return fail("expected a rule name (all_of, any_of, not, matching, most_recent, pushed_within, pulled_within)");
    at += m[0].length;
    return m[0];
  };
  const string = (): string => {
    space();
    const m = /^"(?:[^"\\]|\\.)*"/.exec(text.slice(at));
    if (!m) return fail('expected a pattern in double quotes, e.g. "v.*"');
    at += m[0].length;
    return JSON.parse(m[0]) as string;
  };
  const number = (): number => {
    space();
    const m = /^[0-9]+/.exec(text.slice(at));
    if (!m) return fail("expected a number");
    at += m[0].length;
    return Number(m[0]);
  };
  const duration = (): number => {
    space();
    const m = /^([0-9]+)(ms|s|m|h|d)\b/.exec(text.slice(at));
    if (!m) return fail("expected a duration such as 7d, 12h, 30m or 90s");
    at += m[0].length;
    return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  };
  const more = (): boolean => {
    space();
    if (text[at] === ",") {
      at++;
      return true;
    }
    return false;
  };
  const rule = (depth: number): KeepRule => {
    if (depth > KEEP_MAX_DEPTH) fail(`a keep rule nests at most ${KEEP_MAX_DEPTH} levels deep`);
    const name = word();
    expect("(");
    let result: KeepRule;
    if (name === "all_of" || name === "any_of") {
      const rules: KeepRule[] = [];
      space();
      if (text[at] !== ")") {
        do rules.push(rule(depth + 1));
        while (more());
      }
      result = name === "all_of" ? { allOf: rules } : { anyOf: rules };
    } else if (name === "not") result = { not: rule(depth + 1) };
    else if (name === "matching") result = { matching: { tagPattern: string() } };
    else if (name === "most_recent") {
      const count = number();
      result = { mostRecent: more() ? { count, tagPattern: string() } : { count } };
    } else if (name === "pushed_within") result = { pushedWithin: { ms: duration() } };
    else if (name === "pulled_within") result = { pulledWithin: { ms: duration() } };
    else return fail(`unknown rule ${JSON.stringify(name)}; expected all_of, any_of, not, matching, most_recent, pushed_within or pulled_within`);
    expect(")");
    return result;
  };
  const parsed = rule(1);
  space();
  if (at < text.length) fail("unexpected text after the rule");
  checkKeepRule(field, parsed, checkPattern);
  return parsed;
}

/**
 * The message as a tree, checked (checkKeepRule). The shape bounds are enforced while walking: a
 * message deeper or larger than them is refused before it is walked any further.
 */
export function keepRuleFromProto(path: string, message: KeepRuleMessage, checkPattern: PatternCheck = noPatternCheck): KeepRule {
  const bound = shapeBounds();
  const walk = (m: KeepRuleMessage, at: string, depth: number): KeepRule => {
    bound(at, depth);
    const k = m.kind;
    switch (k.case) {
      case "allOf":
        return { allOf: k.value.rules.map((r, i) => walk(r, `${at}.all_of.rules[${i}]`, depth + 1)) };
      case "anyOf":
        return { anyOf: k.value.rules.map((r, i) => walk(r, `${at}.any_of.rules[${i}]`, depth + 1)) };
      case "not":
        return { not: walk(k.value, `${at}.not`, depth + 1) };
      case "matching":
        return { matching: { tagPattern: k.value.tagPattern } };
      case "mostRecent":
        return { mostRecent: { count: k.value.count, ...(k.value.tagPattern ? { tagPattern: k.value.tagPattern } : {}) } };
      case "pushedWithin":
        return { pushedWithin: { ms: durationMs(`${at}.pushed_within.duration`, k.value.duration) } };
      case "pulledWithin":
        return { pulledWithin: { ms: durationMs(`${at}.pulled_within.duration`, k.value.duration) } };
      default:
        return failAt(at, "set one of all_of, any_of, not, matching, most_recent, pushed_within and pulled_within");
    }
  };
  const rule = walk(message, path, 1);
  checkKeepRule(path, rule, checkPattern);
  return rule;
}

export function keepRuleToProto(rule: KeepRule): MessageInitShape<typeof KeepRuleSchema> {
  if ("allOf" in rule) return { kind: { case: "allOf", value: { rules: rule.allOf.map(keepRuleToProto) } } };
  if ("anyOf" in rule) return { kind: { case: "anyOf", value: { rules: rule.anyOf.map(keepRuleToProto) } } };
  if ("not" in rule) return { kind: { case: "not", value: keepRuleToProto(rule.not) } };
  if ("matching" in rule) return { kind: { case: "matching", value: { tagPattern: rule.matching.tagPattern } } };
  if ("mostRecent" in rule) return { kind: { case: "mostRecent", value: { count: rule.mostRecent.count, tagPattern: rule.mostRecent.tagPattern ?? "" } } };
  if ("pushedWithin" in rule) return { kind: { case: "pushedWithin", value: { duration: msDuration(rule.pushedWithin.ms) } } };
  return { kind: { case: "pulledWithin", value: { duration: msDuration(rule.pulledWithin.ms) } } };
}
