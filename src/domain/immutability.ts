// Immutable tags: which rule protects a tag, and the refusal that names it. The store reads the
// rules that apply to a repository (src/store/immutability-rules.ts) inside the transaction that
// writes the tag, and asks here whether one of them matches.
import { ImmutableTagRefused } from "./errors.js";
import { describeScope, SCOPE_NEARNESS, type NamedScope } from "./policy-scope.js";
import type { Check } from "./names.js";
import { cachedTagPattern, checkTagPattern, type TagPattern } from "./tag-pattern.js";
import { hasControlCharacter } from "./text.js";

export interface ImmutabilityRuleRef {
  id: string;
  /** RE2, matched against the whole tag name. */
  tagPattern: string;
  scope: NamedScope;
}

/** A rule's compiled pattern (tag-pattern.ts keeps them compiled). */
function patternOf(source: string): TagPattern {
  const result = cachedTagPattern(source);
  // Patterns are checked when a rule is written; one the engine no longer takes (a row written
  // by hand) protects every tag rather than none: an immutability rule fails closed.
  return "problem" in result ? { source, matches: () => true } : result;
}

/**
 * A rule's tag_pattern: RE2 (as sync's filter), not empty (an empty pattern matches only the empty
 * name, which no tag has: a rule that protects nothing is a mistake), and printable (tag names
 * are; the pattern is quoted in every refusal).
 */
export const checkRulePattern: Check = (pattern) => {
  if (pattern === "") return "must not be empty: an RE2 regular expression matched against the whole tag name, e.g. v[0-9]+\\..*";
  if (hasControlCharacter(pattern)) return "must not contain control characters";
  return checkTagPattern(pattern);
};

/** Whether a rule's pattern matches the whole tag name. */
function ruleMatches(rule: Pick<ImmutabilityRuleRef, "tagPattern">, tag: string): boolean {
  return patternOf(rule.tagPattern).matches(tag);
}

/**
 * The rule that protects `tag`, among rules that all apply to its repository: the nearest scope's
 * first (the repository's own, then its namespace's, then its registry's), in the order given
 * within a scope. Undefined: the tag is not immutable.
 */
export function protectingRule<R extends ImmutabilityRuleRef>(rules: readonly R[], tag: string): R | undefined {
  let best: R | undefined;
  for (const rule of rules) {
    if (best !== undefined && SCOPE_NEARNESS[rule.scope.kind] >= SCOPE_NEARNESS[best.scope.kind]) continue;
    if (ruleMatches(rule, tag)) best = rule;
  }
  return best;
}

/** `immutability rule <id> (tag_pattern "<p>" on namespace local/team)`: how every refusal names its rule. */
function describeRule(rule: ImmutabilityRuleRef): string {
  return `immutability rule ${rule.id} (tag_pattern "${rule.tagPattern}" on ${describeScope(rule.scope)})`;
}

/** What a refused write tried to do to a protected tag. */
export type ImmutableAttempt = "move" | "rename" | "delete";

const VERBS: Record<ImmutableAttempt, string> = { move: "moving it to another manifest", rename: "renaming it", delete: "deleting it" };
const ADVICE: Record<ImmutableAttempt, string> = {
  move: "push the new manifest under a new tag",
  rename: "tag the manifest under the new name instead",
  delete: "delete the rule first if the tag must go",
};

/**
 * The refusal of a write to the protected tag itself. `tag`: its full reference
 * (`local/team/app:1.0`) and, when known, its id; `action`: the write's audit action.
 */
export function immutableTag(
  rule: ImmutabilityRuleRef,
  attempt: ImmutableAttempt,
  tag: { id?: string; fullName: string },
  action: string,
): ImmutableTagRefused {
  return new ImmutableTagRefused(`tag ${tag.fullName} is immutable: ${describeRule(rule)} forbids ${VERBS[attempt]}; ${ADVICE[attempt]}`, rule, action, {
    type: "tag",
    id: tag.id ?? "",
    name: tag.fullName,
  });
}

/**
 * The refusal of a delete that would take a protected tag with it: a manifest the tag points at
 * (or an index that lists it), or a repository, namespace or registry that holds the tag.
 */
export function holdsImmutableTag(
  rule: ImmutabilityRuleRef,
  target: { type: string; id: string; name: string; what: string },
  tagFullName: string,
  action: string,
): ImmutableTagRefused {
  return new ImmutableTagRefused(
    `${target.what} cannot be deleted: it holds tag ${tagFullName}, which is immutable under ${describeRule(rule)}; delete the rule first`,
    rule,
    action,
    { type: target.type, id: target.id, name: target.name },
  );
}
