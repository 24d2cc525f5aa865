// Retention (issue 15): which tags and manifests of one repository a policy deletes, and why.
// planRepository() is the decision, a pure function of the repository's rows, the policy and the
// time: a dry run returns its plan, a real run carries the same plan out (src/store/retention.ts),
// re-checking each deletion in its transaction. Which policy applies to a repository (the
// nearest scope's) is decided in SQL; the rows a plan needs are read there too.
//
// Semantics (docs/design-notes.md, "Retention"):
// - A tag is kept when the policy's `keep` rule holds for it; no rule keeps every tag. Leaves are
//   decided per tag against the whole repository: `mostRecent` ranks all tags of the repository
//   (or those its own tagPattern matches) by push time, newest first, equal times by name; never
//   the tags its siblings select. allOf/anyOf/not are plain AND/OR/NOT of the leaves.
// - A tag an immutability rule protects is kept unless the policy has deleteImmutable.
// - With untaggedGraceMs, manifests are deleted that nothing keeps: kept are those a kept tag
//   points at, those pushed or pulled within the grace, and, from those, every child of a kept
//   index and every referrer of a kept manifest (however deep). Of the rest, a referrer of a
//   deleted manifest goes "with its subject"; the others are "untagged past grace".
// - Without it no manifest is deleted: the manifests of deleted tags are left to garbage
//   collection, which removes untagged manifests after GC_GRACE_MS (their referrers after them).
import {
  checkDuration as checkDurationBounds,
  checkKeepRule as checkRule,
  formatDuration,
  KeepRuleError,
  parseKeepRule as parseRule,
  WITHIN_MAX_MS,
  type KeepRule,
  type PatternCheck,
} from "../client/keep-rule.js";
import { invalidArgument } from "./errors.js";
import { protectingRule, type ImmutabilityRuleRef } from "./immutability.js";
import { describeScope, type NamedScope } from "./policy-scope.js";
import { cachedTagPattern, type TagPattern } from "./tag-pattern.js";
import { hasControlCharacter } from "./text.js";

/** An untagged manifest younger than this is part of a push in flight (children before their index). */
export const UNTAGGED_GRACE_MIN_MS = 3_600_000;
export const UNTAGGED_GRACE_MAX_MS = WITHIN_MAX_MS;

export interface RetentionPolicyRef {
  id: string;
  scope: NamedScope;
  keep: KeepRule | null;
  untaggedGraceMs: number | null;
  deleteImmutable: boolean;
  disabled: boolean;
}

/** A tag as a plan reads it. `lastPullTime`: the later of the tag's own last pull and its manifest's. */
export interface RepoTag {
  id: string;
  name: string;
  /** tags.version: a tag moved since the plan has another, and is left alone. */
  version: number;
  digest: string;
  manifestId: string | null;
  pushTime: Date;
  lastPullTime: Date | null;
  sizeBytes: number;
}

export interface RepoManifest {
  id: string;
  digest: string;
  pushTime: Date;
  lastPullTime: Date | null;
  subjectDigest: string | null;
  /** Digests an index lists (kind 'manifest' references). */
  children: readonly string[];
  sizeBytes: number;
}

export interface RepositorySnapshot {
  id: string;
  /** `<registry>/<namespace>/<repository>`. */
  name: string;
  tags: readonly RepoTag[];
  /** Every manifest of the repository; read only when the policy has an untagged grace. */
  manifests: readonly RepoManifest[];
  /** The immutability rules that apply to the repository. */
  immutabilityRules: readonly ImmutabilityRuleRef[];
}

export type RetentionReasonKind = "not-kept" | "untagged" | "referrer";

export interface PlannedDeletion {
  target: "tag" | "manifest";
  reason: RetentionReasonKind;
  /** Which rule decided, for people and the audit log. */
  rule: string;
  /** target tag: the tag as planned (a re-check compares the version). */
  tag?: { id: string; name: string; version: number };
  /** target manifest: the manifest as planned (a re-check compares the push time). */
  manifest?: { id: string; pushTime: Date };
  digest: string;
  /** A tag protected by this rule, deleted because the policy has deleteImmutable. */
  immutabilityRuleId?: string;
  pushTime: Date;
  lastPullTime: Date | null;
  sizeBytes: number;
}

export interface RepositoryPlan {
  /** Tags (by name), then manifests (an index before its children, a subject before its referrers). */
  deletions: PlannedDeletion[];
  tagsExamined: number;
  /** Tags `keep` did not keep that an immutability rule protected. */
  immutableKept: number;
}

const iso = (d: Date) => d.toISOString();

// ---- the rule tree: checks ----

/**
 * The service's checks of a keep rule: those of src/client/keep-rule.ts, tag patterns compiled as
 * RE2, and a refusal as INVALID_ARGUMENT naming the field path.
 */
export function checkKeepRule(path: string, rule: KeepRule): void {
  asInvalidArgument(() => checkRule(path, rule, checkTagPatternOfRule));
}

/** The text form (src/client/keep-rule.ts) read and checked as the service checks a rule. */
export function parseKeepRule(text: string, field = "keep"): KeepRule {
  return asInvalidArgument(() => parseRule(text, field, checkTagPatternOfRule));
}

export function checkDuration(path: string, ms: number, min: number, max: number): void {
  asInvalidArgument(() => checkDurationBounds(path, ms, min, max));
}

/** Runs a check of src/client/keep-rule.ts, its KeepRuleError as INVALID_ARGUMENT. */
export function asInvalidArgument<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof KeepRuleError) throw invalidArgument(err.message);
    throw err;
  }
}

/** A tag pattern of a rule: no control characters, and one RE2 compiles. */
export const checkTagPatternOfRule: PatternCheck = (path, pattern) => {
  if (hasControlCharacter(pattern)) throw new KeepRuleError(`${path}: must not contain control characters`);
  const compiled = cachedTagPattern(pattern);
  if ("problem" in compiled) throw new KeepRuleError(`${path}: ${compiled.problem}`);
};

// ---- deciding ----

function patternOf(source: string): TagPattern {
  const compiled = cachedTagPattern(source);
  // Patterns are checked when a policy is written; one the engine no longer takes (a row written
  // by hand) stops the run of that policy rather than deciding on a guess.
  if ("problem" in compiled) throw invalidArgument(`retention policy pattern ${JSON.stringify(source)}: ${compiled.problem}`);
  return compiled;
}

/** The rule tree with what each leaf needs precomputed for one repository. */
type Compiled =
  | { kind: "all" | "any"; path: string; children: Compiled[] }
  | { kind: "not"; path: string; child: Compiled }
  | { kind: "leaf"; path: string; holds: (tag: RepoTag, index: number) => boolean; explain: (tag: RepoTag, index: number, holds: boolean) => string };

/** Tag indexes by recency: push time newest first, equal times by name (byte order). */
function byRecency(tags: readonly RepoTag[]): number[] {
  return tags
    .map((_, i) => i)
    .sort((a, b) => {
      const ta = tags[a]!;
      const tb = tags[b]!;
      const dt = tb.pushTime.getTime() - ta.pushTime.getTime();
      if (dt !== 0) return dt;
      return ta.name < tb.name ? -1 : ta.name > tb.name ? 1 : 0;
    });
}

function compile(rule: KeepRule, path: string, tags: readonly RepoTag[], now: number, recency: () => number[]): Compiled {
  if ("allOf" in rule) return { kind: "all", path, children: rule.allOf.map((c, i) => compile(c, `${path}.all_of.rules[${i}]`, tags, now, recency)) };
  if ("anyOf" in rule) return { kind: "any", path, children: rule.anyOf.map((c, i) => compile(c, `${path}.any_of.rules[${i}]`, tags, now, recency)) };
  if ("not" in rule) return { kind: "not", path, child: compile(rule.not, `${path}.not`, tags, now, recency) };
  if ("matching" in rule) {
    const pattern = patternOf(rule.matching.tagPattern);
    const quoted = JSON.stringify(rule.matching.tagPattern);
    return {
      kind: "leaf",
      path: `${path}.matching`,
      holds: (tag) => pattern.matches(tag.name),
      explain: (_tag, _i, holds) => (holds ? `name matches ${quoted}` : `name does not match ${quoted}`),
    };
  }
  if ("mostRecent" in rule) {
    const { count, tagPattern } = rule.mostRecent;
    const pattern = tagPattern ? patternOf(tagPattern) : undefined;
    const kept = new Set<number>();
    for (const i of recency()) {
      if (kept.size >= count) break;
      if (!pattern || pattern.matches(tags[i]!.name)) kept.add(i);
    }
    const among = `the ${count} most recently pushed tags${tagPattern ? ` matching ${JSON.stringify(tagPattern)}` : ""}`;
    return {
      kind: "leaf",
      path: `${path}.most_recent`,
      holds: (_tag, i) => kept.has(i),
      explain: (tag, _i, holds) =>
        holds ? `among ${among}` : pattern && !pattern.matches(tag.name) ? `name does not match ${JSON.stringify(tagPattern)}` : `not among ${among}`,
    };
  }
  if ("pushedWithin" in rule) {
    const ms = rule.pushedWithin.ms;
    return {
      kind: "leaf",
      path: `${path}.pushed_within`,
      holds: (tag) => tag.pushTime.getTime() > now - ms,
      explain: (tag, _i, holds) => `pushed ${iso(tag.pushTime)}, ${holds ? "" : "not "}within ${formatDuration(ms)}`,
    };
  }
  const ms = rule.pulledWithin.ms;
  return {
    kind: "leaf",
    path: `${path}.pulled_within`,
    holds: (tag) => tag.lastPullTime !== null && tag.lastPullTime.getTime() > now - ms,
    explain: (tag, _i, holds) =>
      tag.lastPullTime === null ? `never pulled` : `last pulled ${iso(tag.lastPullTime)}, ${holds ? "" : "not "}within ${formatDuration(ms)}`,
  };
}

function holds(node: Compiled, tag: RepoTag, i: number): boolean {
  if (node.kind === "leaf") return node.holds(tag, i);
  if (node.kind === "not") return !holds(node.child, tag, i);
  return node.kind === "all" ? node.children.every((c) => holds(c, tag, i)) : node.children.some((c) => holds(c, tag, i));
}

/** Why `node` came out as it did for the tag: the leaves that decided, as `path: finding`. */
function explain(node: Compiled, tag: RepoTag, i: number): { holds: boolean; why: string[] } {
  if (node.kind === "leaf") {
    const h = node.holds(tag, i);
    return { holds: h, why: [`${node.path}: ${node.explain(tag, i, h)}`] };
  }
  if (node.kind === "not") {
    const inner = explain(node.child, tag, i);
    return { holds: !inner.holds, why: inner.why };
  }
  const results = node.children.map((c) => explain(c, tag, i));
  const h = node.kind === "all" ? results.every((r) => r.holds) : results.some((r) => r.holds);
  if (results.length === 0) return { holds: h, why: [`${node.path}: an empty ${node.kind === "all" ? "all_of always holds" : "any_of never holds"}`] };
  // What decided: for a result that holds, the children that hold; for one that fails, the
  // children that fail (all of them, for any_of).
  const deciding = results.filter((r) => r.holds === h);
  return { holds: h, why: deciding.flatMap((r) => r.why) };
}

/** Which tags `keep` keeps: a flag per tag, and the reason of each one it does not. */
function decideTags(keep: KeepRule | null, tags: readonly RepoTag[], now: Date): { kept: boolean[]; why: Map<number, string> } {
  const kept = new Array<boolean>(tags.length).fill(true);
  const why = new Map<number, string>();
  if (keep === null) return { kept, why };
  let order: number[] | undefined;
  const root = compile(keep, "keep", tags, now.getTime(), () => (order ??= byRecency(tags)));
  tags.forEach((tag, i) => {
    if (holds(root, tag, i)) return;
    kept[i] = false;
    why.set(i, explain(root, tag, i).why.join("; "));
  });
  return { kept, why };
}

/** The decision for one repository: what the policy deletes there, and why. */
export function planRepository(policy: RetentionPolicyRef, repo: RepositorySnapshot, now: Date): RepositoryPlan {
  const { kept, why } = decideTags(policy.keep, repo.tags, now);
  const deletions: PlannedDeletion[] = [];
  let immutableKept = 0;
  const deletedTags = new Set<number>();
  repo.tags.forEach((tag, i) => {
    if (kept[i]) return;
    const rule = repo.immutabilityRules.length > 0 ? protectingRule(repo.immutabilityRules, tag.name) : undefined;
    if (rule && !policy.deleteImmutable) {
      kept[i] = true;
      immutableKept++;
      return;
    }
    deletedTags.add(i);
    deletions.push({
      target: "tag",
      reason: "not-kept",
      rule: why.get(i)!,
      tag: { id: tag.id, name: tag.name, version: tag.version },
      digest: tag.digest,
      ...(rule ? { immutabilityRuleId: rule.id } : {}),
      pushTime: tag.pushTime,
      lastPullTime: tag.lastPullTime,
      sizeBytes: tag.sizeBytes,
    });
  });
  deletions.sort((a, b) => (a.tag!.name < b.tag!.name ? -1 : a.tag!.name > b.tag!.name ? 1 : 0));
  if (policy.untaggedGraceMs !== null) deletions.push(...planManifests(policy.untaggedGraceMs, repo, kept, deletedTags, now));
  return { deletions, tagsExamined: repo.tags.length, immutableKept };
}

function planManifests(graceMs: number, repo: RepositorySnapshot, keptTags: boolean[], deletedTags: Set<number>, now: Date): PlannedDeletion[] {
  const byDigest = new Map(repo.manifests.map((m) => [m.digest, m]));
  const referrersOf = new Map<string, RepoManifest[]>();
  for (const m of repo.manifests) {
    if (m.subjectDigest === null) continue;
    const list = referrersOf.get(m.subjectDigest);
    if (list) list.push(m);
    else referrersOf.set(m.subjectDigest, [m]);
  }
  const since = now.getTime() - graceMs;
  const recent = (m: RepoManifest) => m.pushTime.getTime() > since || (m.lastPullTime !== null && m.lastPullTime.getTime() > since);
  // Kept: what a kept tag points at, what was pushed or pulled within the grace, and from those
  // every child of an index and every referrer, however deep.
  const kept = new Set<string>();
  const queue: string[] = [];
  const keep = (digest: string) => {
    if (kept.has(digest) || !byDigest.has(digest)) return;
    kept.add(digest);
    queue.push(digest);
  };
  repo.tags.forEach((tag, i) => {
    if (keptTags[i]) keep(tag.digest);
  });
  for (const m of repo.manifests) if (recent(m)) keep(m.digest);
  while (queue.length > 0) {
    const digest = queue.pop()!;
    for (const child of byDigest.get(digest)!.children) keep(child);
    for (const referrer of referrersOf.get(digest) ?? []) keep(referrer.digest);
  }
  const doomed = repo.manifests.filter((m) => !kept.has(m.digest));
  if (doomed.length === 0) return [];
  const doomedDigests = new Set(doomed.map((m) => m.digest));
  const tagsDeletedOf = new Map<string, string[]>();
  for (const i of deletedTags) {
    const tag = repo.tags[i]!;
    const list = tagsDeletedOf.get(tag.digest);
    if (list) list.push(tag.name);
    else tagsDeletedOf.set(tag.digest, [tag.name]);
  }
  const grace = formatDuration(graceMs);
  const deletion = (m: RepoManifest): PlannedDeletion => {
    const subject = m.subjectDigest !== null && doomedDigests.has(m.subjectDigest) ? m.subjectDigest : undefined;
    const deletedHere = tagsDeletedOf.get(m.digest)?.sort();
    const rule = subject
      ? `referrer of ${subject}, which this run deletes`
      : `untagged_grace: untagged${deletedHere ? ` once this run deletes its tags (${deletedHere.join(", ")})` : ""}, last pushed ${iso(m.pushTime)}, ${
          m.lastPullTime ? `last pulled ${iso(m.lastPullTime)}` : "never pulled"
        }, neither within ${grace}`;
    return {
      target: "manifest",
      reason: subject ? "referrer" : "untagged",
      rule,
      manifest: { id: m.id, pushTime: m.pushTime },
      digest: m.digest,
      pushTime: m.pushTime,
      lastPullTime: m.lastPullTime,
      sizeBytes: m.sizeBytes,
    };
  };
  return topological(doomed, doomedDigests).map(deletion);
}

/** The doomed manifests with every index before its children and every subject before its referrers (then by digest). */
function topological(doomed: RepoManifest[], digests: Set<string>): RepoManifest[] {
  const after = new Map<string, string[]>();
  const waiting = new Map<string, number>(doomed.map((m) => [m.digest, 0]));
  const edge = (from: string, to: string) => {
    if (!digests.has(from) || !digests.has(to) || from === to) return;
    after.set(from, [...(after.get(from) ?? []), to]);
    waiting.set(to, waiting.get(to)! + 1);
  };
  for (const m of doomed) {
    for (const child of new Set(m.children)) edge(m.digest, child);
    if (m.subjectDigest !== null) edge(m.subjectDigest, m.digest);
  }
  const byDigest = new Map(doomed.map((m) => [m.digest, m]));
  const ready = [...waiting].filter(([, n]) => n === 0).map(([d]) => d);
  const order: RepoManifest[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
    const digest = ready.pop()!;
    order.push(byDigest.get(digest)!);
    for (const next of after.get(digest) ?? []) {
      const n = waiting.get(next)! - 1;
      waiting.set(next, n);
      if (n === 0) ready.push(next);
    }
  }
  return order;
}

/** `namespace local/team`: how deletions and the audit log name a policy's scope. */
export function policyScopeText(policy: Pick<RetentionPolicyRef, "scope">): string {
  return describeScope(policy.scope);
}
