// A keep rule between its message (retention.proto's KeepRule) and the domain's tree
// (src/domain/retention.ts): the service reads and writes policies with it, the CLI builds the
// message of a rule it parsed from text. No server code here.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Duration } from "@bufbuild/protobuf/wkt";
import type { KeepRule as KeepRuleMessage, KeepRuleSchema } from "../../gen/artifact/v1/retention_pb.js";
import { invalidArgument } from "../domain/errors.js";
import { checkKeepRule, KEEP_MAX_DEPTH, KEEP_MAX_RULES, type KeepRule } from "../domain/retention.js";

/** A Duration as whole milliseconds; `path` names it in errors. */
export function durationMs(path: string, d: Duration | undefined): number {
  if (!d) throw invalidArgument(`${path}: required`);
  const ms = Number(d.seconds) * 1000 + Math.trunc(d.nanos / 1_000_000);
  if (d.seconds < 0n || d.nanos < 0) throw invalidArgument(`${path}: must be positive`);
  return ms;
}

/**
 * The message as the domain's tree. Shape limits are enforced while walking (a tree deeper or
 * larger than the bounds is refused before it is walked any further), values by checkKeepRule.
 */
export function keepRuleFromProto(path: string, message: KeepRuleMessage): KeepRule {
  let count = 0;
  const walk = (m: KeepRuleMessage, at: string, depth: number): KeepRule => {
    if (++count > KEEP_MAX_RULES) throw invalidArgument(`${at}: a keep rule has at most ${KEEP_MAX_RULES} rules in all`);
    if (depth > KEEP_MAX_DEPTH) throw invalidArgument(`${at}: a keep rule nests at most ${KEEP_MAX_DEPTH} levels deep`);
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
        throw invalidArgument(`${at}: set one of all_of, any_of, not, matching, most_recent, pushed_within and pulled_within`);
    }
  };
  const rule = walk(message, path, 1);
  checkKeepRule(path, rule);
  return rule;
}

export const msDuration = (ms: number): { seconds: bigint; nanos: number } => ({
  seconds: BigInt(Math.floor(ms / 1000)),
  nanos: (ms % 1000) * 1_000_000,
});

export function keepRuleToProto(rule: KeepRule): MessageInitShape<typeof KeepRuleSchema> {
  if ("allOf" in rule) return { kind: { case: "allOf", value: { rules: rule.allOf.map(keepRuleToProto) } } };
  if ("anyOf" in rule) return { kind: { case: "anyOf", value: { rules: rule.anyOf.map(keepRuleToProto) } } };
  if ("not" in rule) return { kind: { case: "not", value: keepRuleToProto(rule.not) } };
  if ("matching" in rule) return { kind: { case: "matching", value: { tagPattern: rule.matching.tagPattern } } };
  if ("mostRecent" in rule) return { kind: { case: "mostRecent", value: { count: rule.mostRecent.count, tagPattern: rule.mostRecent.tagPattern ?? "" } } };
  if ("pushedWithin" in rule) return { kind: { case: "pushedWithin", value: { duration: msDuration(rule.pushedWithin.ms) } } };
  return { kind: { case: "pulledWithin", value: { duration: msDuration(rule.pulledWithin.ms) } } };
}
