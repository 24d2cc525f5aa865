// The retention decision (src/domain/retention.ts), table-tested against expectations written by
// hand: which tags and manifests a policy deletes, in which order, and the reason it gives. The
// store feeds this function the repository's rows; these tables feed it rows written here.
import { describe, expect, it } from "vitest";
import { describeKeepRule, parseKeepRule as parseKeepRuleText, type KeepRule } from "../src/client/keep-rule.js";
import {
  checkKeepRule,
  parseKeepRule,
  planRepository,
  type RepoManifest,
  type RepoTag,
  type RepositorySnapshot,
  type RetentionPolicyRef,
} from "../src/domain/retention.js";
import { isDomainError } from "../src/domain/errors.js";
import type { ImmutabilityRuleRef } from "../src/domain/immutability.js";

const NOW = new Date("2026-06-30T12:00:00.000Z");
const DAY = 86_400_000;
const HOUR = 3_600_000;
const daysAgo = (d: number) => new Date(NOW.getTime() - d * DAY);

let seq = 0;
const digestOf = (name: string) => `sha256:${Buffer.from(name).toString("hex").padEnd(64, "0").slice(0, 64)}`;

/** A tag `name` pushed `age` days ago pointing at manifest `m` (default: a manifest of its own). */
function tag(name: string, age: number, options: { m?: string; pulled?: number } = {}): RepoTag {
  const m = options.m ?? `m-${name}`;
  return {
    id: `tag-${name}`,
    name,
    version: 1,
    digest: digestOf(m),
    manifestId: `id-${m}`,
    pushTime: daysAgo(age),
    lastPullTime: options.pulled === undefined ? null : daysAgo(options.pulled),
    sizeBytes: 100 + seq++,
  };
}

function manifest(name: string, age: number, options: { children?: string[]; subject?: string; pulled?: number } = {}): RepoManifest {
  return {
    id: `id-${name}`,
    digest: digestOf(name),
    pushTime: daysAgo(age),
    lastPullTime: options.pulled === undefined ? null : daysAgo(options.pulled),
    subjectDigest: options.subject ? digestOf(options.subject) : null,
    children: (options.children ?? []).map(digestOf),
    sizeBytes: 1000,
  };
}

const policy = (keep: KeepRule | null, more: Partial<RetentionPolicyRef> = {}): RetentionPolicyRef => ({
  id: "p1",
  scope: { kind: "repository", name: "local/team/app" },
  keep,
  untaggedGraceMs: null,
  deleteImmutable: false,
  disabled: false,
  ...more,
});

const repo = (tags: RepoTag[], more: Partial<RepositorySnapshot> = {}): RepositorySnapshot => ({
  id: "r1",
  name: "local/team/app",
  tags,
  manifests: [],
  immutabilityRules: [],
  ...more,
});

/** Tag names deleted, sorted. */
const deletedTags = (p: RetentionPolicyRef, r: RepositorySnapshot) =>
  planRepository(p, r, NOW)
    .deletions.filter((d) => d.target === "tag")
    .map((d) => d.tag!.name);

// Rules.
const mostRecent = (count: number, tagPattern?: string): KeepRule => ({ mostRecent: { count, ...(tagPattern ? { tagPattern } : {}) } });
const pushedWithin = (days: number): KeepRule => ({ pushedWithin: { ms: days * DAY } });
const pulledWithin = (days: number): KeepRule => ({ pulledWithin: { ms: days * DAY } });
const matching = (tagPattern: string): KeepRule => ({ matching: { tagPattern } });
const anyOf = (...rules: KeepRule[]): KeepRule => ({ anyOf: rules });
const allOf = (...rules: KeepRule[]): KeepRule => ({ allOf: rules });
const not = (rule: KeepRule): KeepRule => ({ not: rule });

// Ten tags: v1..v5 (releases, pushed 50, 40, 30, 20, 10 days ago), dev-1..dev-4 (12, 6, 3, 1 days
// ago), latest (pointing at v5's manifest, pushed 10 days ago, pulled yesterday).
const TEN = [
  tag("v1", 50),
  tag("v2", 40, { pulled: 2 }),
  tag("v3", 30),
  tag("v4", 20),
  tag("v5", 10),
  tag("dev-1", 12),
  tag("dev-2", 6),
  tag("dev-3", 3, { pulled: 40 }),
  tag("dev-4", 1),
  tag("latest", 10, { m: "m-v5", pulled: 1 }),
];

describe("which tags a keep rule deletes", () => {
  const cases: [string, KeepRule | null, string[]][] = [
    ["no rule keeps every tag", null, []],
    // Recency: dev-4 (1), dev-3 (3), dev-2 (6), then latest and v5 (both 10 days: by name, latest first).
    ["most_recent 3", mostRecent(3), ["dev-1", "latest", "v1", "v2", "v3", "v4", "v5"]],
    ["most_recent 4: equal push times are ranked by name", mostRecent(4), ["dev-1", "v1", "v2", "v3", "v4", "v5"]],
    ["most_recent larger than the repository", mostRecent(100), []],
    ["pushed_within 7 days", pushedWithin(7), ["dev-1", "latest", "v1", "v2", "v3", "v4", "v5"]],
    ["pulled_within 3 days (never pulled does not hold)", pulledWithin(3), ["dev-1", "dev-2", "dev-3", "dev-4", "v1", "v3", "v4", "v5"]],
    ["matching", matching("v[0-9]+"), ["dev-1", "dev-2", "dev-3", "dev-4", "latest"]],
    ["the whole name must match", matching("v"), TEN.map((t) => t.name).sort()],
    // "Keep the last 3 AND anything pushed this week" as people mean it: either keeps.
    ["any_of(most_recent 3, pushed_within 7d)", anyOf(mostRecent(3), pushedWithin(7)), ["dev-1", "latest", "v1", "v2", "v3", "v4", "v5"]],
    ["any_of(most_recent 5, pushed_within 2d)", anyOf(mostRecent(5), pushedWithin(2)), ["dev-1", "v1", "v2", "v3", "v4"]],
    // The literal AND: only what both keep.
    ["all_of(most_recent 5, pushed_within 5d)", allOf(mostRecent(5), pushedWithin(5)), ["dev-1", "dev-2", "latest", "v1", "v2", "v3", "v4", "v5"]],
    // most_recent ranks the whole repository, never what its sibling selects: the v-tags among the
    // 6 newest tags are v5 only (dev-4, dev-3, dev-2, latest, v5, dev-1 are the 6 newest).
    [
      "all_of(matching v.*, most_recent 6) ranks all tags",
      allOf(matching("v.*"), mostRecent(6)),
      ["dev-1", "dev-2", "dev-3", "dev-4", "latest", "v1", "v2", "v3", "v4"],
    ],
    // …its own tag_pattern ranks only the tags it matches: the 2 newest v-tags.
    ["most_recent 2 of v.*", mostRecent(2, "v.*"), ["dev-1", "dev-2", "dev-3", "dev-4", "latest", "v1", "v2", "v3"]],
    [
      "releases: the 2 newest; dev builds: a week; latest always",
      anyOf(mostRecent(2, "v.*"), allOf(matching("dev-.*"), pushedWithin(7)), matching("latest")),
      ["dev-1", "v1", "v2", "v3"],
    ],
    ["not(matching dev-.*): deletes every dev tag", not(matching("dev-.*")), ["dev-1", "dev-2", "dev-3", "dev-4"]],
    ["any_of(not(matching dev-.*), pushed_within 4d): old dev tags only", anyOf(not(matching("dev-.*")), pushedWithin(4)), ["dev-1", "dev-2"]],
    ["all_of() always holds", allOf(), []],
    ["any_of() never holds", anyOf(), TEN.map((t) => t.name).sort()],
    ["any_of(pulled_within 3d, most_recent 1)", anyOf(pulledWithin(3), mostRecent(1)), ["dev-1", "dev-2", "dev-3", "v1", "v3", "v4", "v5"]],
  ];
  it.each(cases)("%s", (_name, keep, expected) => {
    expect(deletedTags(policy(keep), repo(TEN))).toEqual(expected);
  });

  it("names the rules that failed, as field paths with what they found", () => {
    const plan = planRepository(policy(anyOf(mostRecent(3), pushedWithin(7), matching("latest"))), repo(TEN), NOW);
    const v1 = plan.deletions.find((d) => d.tag?.name === "v1")!;
    expect(v1).toMatchObject({ target: "tag", reason: "not-kept", digest: digestOf("m-v1"), pushTime: daysAgo(50) });
    expect(v1.rule).toBe(
      [
        "keep.any_of.rules[0].most_recent: not among the 3 most recently pushed tags",
        `keep.any_of.rules[1].pushed_within: pushed ${daysAgo(50).toISOString()}, not within 7d`,
        'keep.any_of.rules[2].matching: name does not match "latest"',
      ].join("; "),
    );
    // An all_of fails on the rules that failed, not on those that held.
    const all = planRepository(policy(allOf(matching("v.*"), pulledWithin(3))), repo(TEN), NOW);
    expect(all.deletions.find((d) => d.tag?.name === "v1")!.rule).toBe("keep.all_of.rules[1].pulled_within: never pulled");
    expect(all.deletions.find((d) => d.tag?.name === "dev-3")!.rule).toBe(
      'keep.all_of.rules[0].matching: name does not match "v.*"; ' +
        `keep.all_of.rules[1].pulled_within: last pulled ${daysAgo(40).toISOString()}, not within 3d`,
    );
    // A not fails on what held inside it.
    const negated = planRepository(policy(not(matching("dev-.*"))), repo(TEN), NOW);
    expect(negated.deletions[0]!.rule).toBe('keep.not.matching: name matches "dev-.*"');
    const ranked = planRepository(policy(mostRecent(1, "v.*")), repo(TEN), NOW);
    expect(ranked.deletions.find((d) => d.tag?.name === "dev-1")!.rule).toBe('keep.most_recent: name does not match "v.*"');
    expect(ranked.deletions.find((d) => d.tag?.name === "v1")!.rule).toBe('keep.most_recent: not among the 1 most recently pushed tags matching "v.*"');
  });
});

describe("immutable tags", () => {
  const rule: ImmutabilityRuleRef = { id: "rule-1", tagPattern: "v[0-9]+", scope: { kind: "namespace", name: "local/team" } };
  const r = repo(TEN, { immutabilityRules: [rule] });

  it("are kept whatever keep says, and counted", () => {
    const plan = planRepository(policy(mostRecent(2)), r, NOW);
    expect(plan.deletions.map((d) => d.tag!.name)).toEqual(["dev-1", "dev-2", "latest"]);
    expect(plan.immutableKept).toBe(5);
  });

  it("are deleted with delete_immutable, naming the rule", () => {
    const plan = planRepository(policy(mostRecent(2), { deleteImmutable: true }), r, NOW);
    expect(plan.deletions.map((d) => [d.tag!.name, d.immutabilityRuleId])).toEqual([
      ["dev-1", undefined],
      ["dev-2", undefined],
      ["latest", undefined],
      ["v1", "rule-1"],
      ["v2", "rule-1"],
      ["v3", "rule-1"],
      ["v4", "rule-1"],
      ["v5", "rule-1"],
    ]);
    expect(plan.immutableKept).toBe(0);
  });
});

describe("untagged manifests, referrers and index children", () => {
  const grace = (days: number) => ({ untaggedGraceMs: days * DAY });
  const manifestsDeleted = (p: RetentionPolicyRef, r: RepositorySnapshot) =>
    planRepository(p, r, NOW)
      .deletions.filter((d) => d.target === "manifest")
      .map((d) => [Buffer.from(d.digest.slice(7), "hex").toString().replace(/\0+$/, ""), d.reason]);

  it("without an untagged grace no manifest is deleted, only tags", () => {
    const r = repo([tag("a", 30), tag("b", 1)], { manifests: [manifest("m-a", 30), manifest("m-b", 1), manifest("loose", 90)] });
    const plan = planRepository(policy(mostRecent(1)), r, NOW);
    expect(plan.deletions.map((d) => d.target)).toEqual(["tag"]);
  });

  it("deletes untagged manifests past the grace, and those this run untags", () => {
    const r = repo([tag("a", 30), tag("b", 1)], {
      manifests: [manifest("m-a", 30), manifest("m-b", 1), manifest("loose", 90), manifest("fresh", 1), manifest("pulled", 90, { pulled: 1 })],
    });
    expect(manifestsDeleted(policy(mostRecent(1), grace(7)), r)).toEqual([
      ["loose", "untagged"],
      ["m-a", "untagged"],
    ]);
    const plan = planRepository(policy(mostRecent(1), grace(7)), r, NOW);
    expect(plan.deletions.find((d) => d.target === "manifest" && d.digest === digestOf("m-a"))!.rule).toBe(
      `untagged_grace: untagged once this run deletes its tags (a), last pushed ${daysAgo(30).toISOString()}, never pulled, neither within 7d`,
    );
    // A policy without keep only cleans untagged manifests.
    expect(manifestsDeleted(policy(null, grace(7)), r)).toEqual([["loose", "untagged"]]);
  });

  it("a manifest kept by another tag stays", () => {
    const r = repo([tag("old", 30, { m: "shared" }), tag("new", 1, { m: "shared" })], { manifests: [manifest("shared", 30)] });
    const plan = planRepository(policy(pushedWithin(7), grace(7)), r, NOW);
    expect(plan.deletions.map((d) => d.tag?.name ?? d.digest)).toEqual(["old"]);
  });

  it("referrers go with their subject, however deep; referrers of kept manifests stay", () => {
    const r = repo([tag("old", 30, { m: "img-old" }), tag("new", 1, { m: "img-new" })], {
      manifests: [
        manifest("img-old", 30),
        manifest("sig-old", 30, { subject: "img-old" }),
        manifest("sbom-old", 29, { subject: "img-old" }),
        manifest("sig-of-sbom", 29, { subject: "sbom-old" }),
        manifest("img-new", 1),
        manifest("sig-new", 20, { subject: "img-new" }),
        // A referrer whose subject is not here: an untagged manifest like any other.
        manifest("orphan-sig", 30, { subject: "never-pushed" }),
      ],
    });
    expect(manifestsDeleted(policy(pushedWithin(7), grace(7)), r)).toEqual([
      // Subjects before their referrers, then by digest.
      ["img-old", "untagged"],
      ["orphan-sig", "untagged"],
      ["sbom-old", "referrer"],
      ["sig-of-sbom", "referrer"],
      ["sig-old", "referrer"],
    ]);
    const plan = planRepository(policy(pushedWithin(7), grace(7)), r, NOW);
    expect(plan.deletions.find((d) => d.digest === digestOf("sig-old"))!.rule).toBe(`referrer of ${digestOf("img-old")}, which this run deletes`);
  });

  it("a referrer pushed within the grace stays, as any recent manifest", () => {
    const r = repo([tag("old", 30, { m: "img-old" })], { manifests: [manifest("img-old", 30), manifest("sig", 1, { subject: "img-old" })] });
    expect(manifestsDeleted(policy(pushedWithin(7), grace(7)), r)).toEqual([["img-old", "untagged"]]);
  });

  it("a manifest listed by a kept index stays; the children of a deleted index go after it", () => {
    const r = repo([tag("multi-new", 1, { m: "index-new" }), tag("multi-old", 30, { m: "index-old" })], {
      manifests: [
        manifest("index-new", 1, { children: ["amd64-shared", "arm64-new"] }),
        manifest("amd64-shared", 30),
        manifest("arm64-new", 30),
        manifest("index-old", 30, { children: ["amd64-shared", "arm64-old"] }),
        manifest("arm64-old", 30),
      ],
    });
    expect(manifestsDeleted(policy(pushedWithin(7), grace(7)), r)).toEqual([
      ["index-old", "untagged"],
      ["arm64-old", "untagged"],
    ]);
  });

  it("an immutable tag keeps its manifest, its children and its referrers", () => {
    const rule: ImmutabilityRuleRef = { id: "rule-1", tagPattern: "release", scope: { kind: "registry", name: "local" } };
    const r = repo([tag("release", 300, { m: "index" })], {
      manifests: [manifest("index", 300, { children: ["child"] }), manifest("child", 300), manifest("sig", 300, { subject: "index" })],
      immutabilityRules: [rule],
    });
    expect(planRepository(policy(pushedWithin(7), grace(7)), r, NOW).deletions).toEqual([]);
    expect(manifestsDeleted(policy(pushedWithin(7), { ...grace(7), deleteImmutable: true }), r)).toEqual([
      ["index", "untagged"],
      ["child", "untagged"],
      ["sig", "referrer"],
    ]);
  });

  it("the grace counts from the last push or pull, whichever is later", () => {
    const r = repo([], { manifests: [manifest("pushed-2h", 2 / 24), manifest("pulled-2h", 30, { pulled: 2 / 24 }), manifest("idle", 30)] });
    expect(manifestsDeleted(policy(null, { untaggedGraceMs: HOUR }), r)).toEqual([
      ["idle", "untagged"],
      ["pulled-2h", "untagged"],
      ["pushed-2h", "untagged"],
    ]);
    expect(manifestsDeleted(policy(null, { untaggedGraceMs: 3 * HOUR }), r)).toEqual([["idle", "untagged"]]);
  });
});

describe("rule checks", () => {
  const refusal = (rule: KeepRule): string => {
    try {
      checkKeepRule("retention_policy.keep", rule);
    } catch (err) {
      if (isDomainError(err, "invalid-argument")) return err.message;
      throw err;
    }
    return "";
  };

  it.each<[string, KeepRule, string]>([
    ["a count below 1", mostRecent(0), "retention_policy.keep.most_recent.count: must be from 1 to 1000000 (got 0)"],
    [
      "a nested bad pattern",
      anyOf(pushedWithin(1), allOf(matching("(a"))),
      "retention_policy.keep.any_of.rules[1].all_of.rules[0].matching.tag_pattern: not a regular expression the RE2 engine takes",
    ],
    ["an empty match", matching(""), "retention_policy.keep.matching.tag_pattern: must not be empty"],
    ["a lookahead", mostRecent(1, "(?=v)"), "retention_policy.keep.most_recent.tag_pattern: not a regular expression the RE2 engine takes"],
    ["a duration below a second", { pulledWithin: { ms: 10 } }, "retention_policy.keep.pulled_within.duration: must be from 1s to 36500d (got 10ms)"],
    [
      "too deep",
      not(not(not(not(not(not(not(not(matching("x"))))))))),
      "retention_policy.keep.not.not.not.not.not.not.not.not: a keep rule nests at most 8 levels deep",
    ],
    ["too many", anyOf(...Array.from({ length: 64 }, () => matching("x"))), "retention_policy.keep.any_of.rules[63]: a keep rule has at most 64 rules in all"],
  ])("%s", (_name, rule, message) => {
    expect(refusal(rule)).toContain(message);
  });

  it("takes what is within bounds, and describes it", () => {
    const rule = anyOf(mostRecent(10), pushedWithin(7), allOf(matching("dev-.*"), not(pulledWithin(30))), mostRecent(3, "v.*"));
    expect(refusal(rule)).toBe("");
    expect(describeKeepRule(rule)).toBe(
      'any_of(most_recent(10), pushed_within(7d), all_of(matching("dev-.*"), not(pulled_within(30d))), most_recent(3, "v.*"))',
    );
  });
});

describe("the text form (the CLI's --keep)", () => {
  it("reads back what describeKeepRule writes", () => {
    const rules: KeepRule[] = [
      mostRecent(10),
      anyOf(mostRecent(10), pushedWithin(7), allOf(matching("dev-.*"), not(pulledWithin(30))), mostRecent(3, 'v\\d+"x')),
      allOf(),
      { pushedWithin: { ms: 90_000 } },
      { pulledWithin: { ms: 1_500 } },
    ];
    for (const rule of rules) expect(parseKeepRule(describeKeepRule(rule))).toEqual(rule);
    expect(parseKeepRule('  any_of( most_recent(3 , "v.*") ,pushed_within(12h) ) ')).toEqual(anyOf(mostRecent(3, "v.*"), { pushedWithin: { ms: 12 * HOUR } }));
  });

  it.each([
    ["most_recent(0)", "keep.most_recent.count: must be from 1 to 1000000"],
    ["any_of(most_recent(1), keep_all())", 'keep: unknown rule "keep_all"'],
    ["pushed_within(7 days)", "keep: expected a duration such as 7d"],
    ["matching(v.*)", "keep: expected a pattern in double quotes"],
    ["most_recent(1) most_recent(2)", "keep: unexpected text after the rule at character 16"],
    ["any_of(most_recent(1)", 'keep: expected ")"'],
    ['matching("(a")', "keep.matching.tag_pattern: not a regular expression"],
  ])("%s is refused: %s", (text, message) => {
    // The service's reading: INVALID_ARGUMENT.
    let refusal: unknown;
    try {
      parseKeepRule(text);
    } catch (err) {
      refusal = err;
    }
    expect(isDomainError(refusal, "invalid-argument") && refusal.message).toContain(message);
    // The CLI's (src/client, no RE2 engine) refuses the same, but leaves compiling patterns to the service.
    if (text.includes('"(a"')) expect(parseKeepRuleText(text)).toEqual(matching("(a"));
    else expect(() => parseKeepRuleText(text)).toThrow(message);
  });
});
