// artifact retention list|set|delete|run: retention policies of a registry, namespace or
// repository (named as people name them), and runs of them, dry or real. A keep rule is written in
// the text form the service describes policies with (src/client/keep-rule.ts, shared with the
// service; the service compiles the tag patterns).
import { RetentionOutcome, RetentionReason, RetentionTarget, type RetentionDeletion, type RetentionPolicy } from "../../../../gen/artifact/v1/retention_pb.js";
import {
  describeKeepRule,
  durationMs,
  formatDuration,
  keepRuleFromProto,
  keepRuleToProto,
  msDuration,
  parseKeepRule,
  UNIT_MS,
} from "../../../client/keep-rule.js";
import { bool, str, type Context, type Group, type Leaf } from "../cli.js";
import { usageError } from "../exit.js";
import { formatJson, formatTable, humanBytes, isoTime } from "../output.js";
import { listPages, moreHint, PAGING_OPTIONS } from "../paging.js";
import { policyListFilter, SCOPE_SYNTAX, type ScopeRef } from "../resolve.js";

const SCOPE = SCOPE_SYNTAX;
const SCOPE_KIND = { registryId: "registry", namespaceId: "namespace", repositoryId: "repository" } as const;
const DURATION = /^([0-9]{1,9})(s|m|h|d)$/;

const scopeOf = (ctx: Context, name: string): Promise<ScopeRef> => ctx.resolver().scope(name);
const keepText = (p: RetentionPolicy) => (p.keep ? describeKeepRule(keepRuleFromProto("keep", p.keep)) : "(every tag)");
const graceMs = (p: RetentionPolicy) => (p.untaggedGrace ? durationMs("untagged_grace", p.untaggedGrace) : null);

function policyView(p: RetentionPolicy) {
  const grace = graceMs(p);
  return {
    id: p.id,
    scope: p.scope.case ? SCOPE_KIND[p.scope.case] : null,
    scopeName: p.scopeName,
    keep: p.keep ? keepText(p) : null,
    untaggedGrace: grace === null ? null : formatDuration(grace),
    deleteImmutable: p.deleteImmutable,
    disabled: p.disabled,
    description: p.description,
  };
}

/** The policy set on exactly this scope, if there is one. */
async function ownPolicy(ctx: Context, scope: ScopeRef): Promise<RetentionPolicy | undefined> {
  const filter = { registryId: "", namespaceId: "", repositoryId: "", [scope.case]: scope.value };
  return (await ctx.client().retention.listRetentionPolicies({ ...filter, pageSize: 1 })).retentionPolicies[0];
}

const list: Leaf = {
  name: "list",
  args: [`[${SCOPE}]`],
  summary: "list retention policies (those that apply to a scope, or all you may read)",
  description: `Lists the policy of the scope and those of the scopes around it: the nearest one (the
repository's, else its namespace's, else its registry's) is the one that applies. Without a scope,
every policy you may read. With --own, only the policy set on the scope itself.`,
  options: { own: { type: "boolean", description: "only the policy set on the scope itself" }, ...PAGING_OPTIONS },
  examples: ["artifact retention list local/team/app", "artifact retention list -o json"],
  async run(ctx, args) {
    const name = args.positionals[0];
    const scope = name === undefined ? undefined : await scopeOf(ctx, name);
    const filter = policyListFilter(scope, args.values.own === true);
    const listed = await listPages(args, async (page) => {
      const r = await ctx.client().retention.listRetentionPolicies({ ...page, ...filter });
      return { items: r.retentionPolicies, nextPageToken: r.nextPageToken, totalSize: r.totalSize };
    });
    if (ctx.format === "json") {
      ctx.print(formatJson({ policies: listed.items.map(policyView), nextPageToken: listed.nextPageToken, totalSize: listed.totalSize }));
      return;
    }
    ctx.print(
      formatTable(
        ["ID", "SCOPE", "KEEP", "UNTAGGED", "FLAGS", "DESCRIPTION"],
        listed.items.map((p) => {
          const v = policyView(p);
          const flags = [v.deleteImmutable ? "delete-immutable" : "", v.disabled ? "disabled" : ""].filter(Boolean).join(",");
          return [v.id, `${v.scope ?? ""} ${v.scopeName}`, v.keep ?? "(every tag)", v.untaggedGrace ?? "-", flags || "-", v.description];
        }),
      ),
    );
    moreHint(ctx, listed, "policies");
  },
};

const set: Leaf = {
  name: "set",
  args: [SCOPE],
  summary: "set the retention policy of a scope (creates it, or changes the one there)",
  description: `Sets the policy of a registry, namespace or repository (admins of that scope). It applies
to every repository inside that has no policy nearer to it. Tags the --keep rule holds for are kept,
the others deleted; --untagged-grace also deletes untagged manifests neither pushed nor pulled for
that long (with their referrers). Immutable tags are kept unless --delete-immutable.

A rule (quote it for your shell): all_of(…), any_of(…), not(…), matching("<RE2>"),
most_recent(<n>[, "<RE2>"]), pushed_within(<duration>), pulled_within(<duration>); durations
such as 7d, 12h, 30m. most_recent ranks all tags of the repository, or those its own pattern
matches; never what the rules beside it select.

On an existing policy, options not given stay as they are; --clear-keep and --clear-untagged-grace
clear those parts. Try a policy with --disabled and \`artifact retention run --dry-run\` first.`,
  options: {
    keep: { type: "string", value: "<rule>", description: "which tags to keep" },
    "clear-keep": { type: "boolean", description: "keep every tag (clean untagged manifests only)" },
    "untagged-grace": {
      type: "string",
      value: "<duration>",
      description: "delete untagged manifests idle this long (at least 1h)",
      check: (v) => (DURATION.test(v) ? undefined : "expected a duration such as 7d, 12h or 90m"),
    },
    "clear-untagged-grace": { type: "boolean", description: "leave untagged manifests to garbage collection" },
    "delete-immutable": { type: "boolean", negatable: true, description: "also delete tags an immutability rule protects" },
    disabled: { type: "boolean", negatable: true, description: "real runs skip the policy (dry runs still show it)" },
    description: { type: "string", value: "<text>", description: "what the policy is for" },
  },
  examples: [
    `artifact retention set local/team --keep 'any_of(most_recent(10), pushed_within(7d))' --untagged-grace 1d`,
    `artifact retention set local --keep 'any_of(most_recent(5, "v.*"), not(matching("dev-.*")))' --disabled`,
  ],
  async run(ctx, args) {
    const scope = await scopeOf(ctx, args.positionals[0]!);
    const keepText = str(args, "keep");
    if (keepText !== undefined && bool(args, "clear-keep")) throw usageError("--keep and --clear-keep contradict each other");
    const graceText = str(args, "untagged-grace");
    if (graceText !== undefined && bool(args, "clear-untagged-grace")) throw usageError("--untagged-grace and --clear-untagged-grace contradict each other");
    // Checked here with the service's own rules (all but compiling the patterns, which the service
    // does), so a typo is a usage error before any call.
    let keep;
    try {
      keep = keepText === undefined ? undefined : keepRuleToProto(parseKeepRule(keepText, "--keep"));
    } catch (err) {
      throw usageError((err as Error).message);
    }
    const m = graceText === undefined ? undefined : DURATION.exec(graceText)!;
    const untaggedGrace = m ? msDuration(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]) : undefined;
    const fields: Record<string, unknown> = {};
    const paths: string[] = [];
    const field = (path: string, name: string, value: unknown) => {
      paths.push(path);
      fields[name] = value;
    };
    if (keep !== undefined || bool(args, "clear-keep")) field("keep", "keep", keep);
    if (untaggedGrace !== undefined || bool(args, "clear-untagged-grace")) field("untagged_grace", "untaggedGrace", untaggedGrace);
    if (bool(args, "delete-immutable") !== undefined) field("delete_immutable", "deleteImmutable", bool(args, "delete-immutable"));
    if (bool(args, "disabled") !== undefined) field("disabled", "disabled", bool(args, "disabled"));
    if (str(args, "description") !== undefined) field("description", "description", str(args, "description"));
    const existing = await ownPolicy(ctx, scope);
    let policy: RetentionPolicy;
    if (existing) {
      if (paths.length === 0) throw usageError("nothing to change: give --keep, --untagged-grace or another option");
      policy = await ctx.client().retention.updateRetentionPolicy({
        retentionPolicy: { ...fields, id: existing.id, etag: existing.etag },
        updateMask: { paths },
      });
    } else {
      policy = await ctx.client().retention.createRetentionPolicy({ retentionPolicy: { ...fields, scope } });
    }
    if (ctx.format === "json") ctx.print(formatJson(policyView(policy)));
    else {
      const v = policyView(policy);
      ctx.print(
        `${existing ? "Changed" : "Set"} the retention policy of ${v.scope} ${v.scopeName} (${v.id}): keep ${v.keep ?? "every tag"}` +
          `${v.untaggedGrace ? `; untagged manifests after ${v.untaggedGrace}` : ""}${v.deleteImmutable ? "; immutable tags too" : ""}` +
          `${v.disabled ? "; disabled (dry runs only)" : ""}.\n`,
      );
    }
  },
};

const remove: Leaf = {
  name: "delete",
  args: [`${SCOPE}|<id>`],
  summary: "delete a retention policy (its scope falls back to the one around it)",
  description: `Deletes the policy set on the scope (or the policy with this id). Its repositories then
fall under the policy of the enclosing scope, if there is one.`,
  examples: ["artifact retention delete local/team", "artifact retention delete 6b0e…"],
  async run(ctx, args) {
    const target = args.positionals[0]!;
    const byId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(target);
    const policy = byId ? await ctx.client().retention.getRetentionPolicy({ id: target }) : await ownPolicy(ctx, await scopeOf(ctx, target));
    if (!policy) throw usageError(`${target} has no retention policy of its own`);
    await ctx.client().retention.deleteRetentionPolicy({ id: policy.id, etag: policy.etag });
    if (ctx.format === "json") ctx.print(formatJson({ ...policyView(policy), action: "deleted" }));
    else ctx.print(`Deleted the retention policy of ${policyView(policy).scope} ${policy.scopeName} (${policy.id}).\n`);
  },
};

const TARGET = { [RetentionTarget.TAG]: "tag", [RetentionTarget.MANIFEST]: "manifest", [RetentionTarget.UNSPECIFIED]: "" } as const;
const REASON = {
  [RetentionReason.NOT_KEPT]: "not kept",
  [RetentionReason.UNTAGGED]: "untagged",
  [RetentionReason.REFERRER]: "referrer",
  [RetentionReason.UNSPECIFIED]: "",
} as const;
const OUTCOME = {
  [RetentionOutcome.PLANNED]: "would delete",
  [RetentionOutcome.DELETED]: "deleted",
  [RetentionOutcome.SKIPPED]: "skipped",
  [RetentionOutcome.UNSPECIFIED]: "",
} as const;

function deletionView(d: RetentionDeletion) {
  return {
    outcome: OUTCOME[d.outcome],
    target: TARGET[d.target],
    name: d.target === RetentionTarget.TAG ? `${d.repositoryName}:${d.tag}` : `${d.repositoryName}@${d.digest}`,
    digest: d.digest,
    reason: REASON[d.reason],
    rule: d.rule,
    policyId: d.policyId,
    policyScope: d.policyScope,
    immutabilityRuleId: d.immutabilityRuleId || undefined,
    pushTime: isoTime(d.pushTime),
    lastPullTime: isoTime(d.lastPullTime),
    sizeBytes: Number(d.sizeBytes),
  };
}

const run: Leaf = {
  name: "run",
  args: [`[${SCOPE}]`],
  summary: "run retention now, or with --dry-run list what it would delete and why",
  description: `Runs the policies over the repositories of the scope (each under its nearest policy; admins
of the scope), or over every repository with a policy (global admins). --dry-run deletes nothing and
lists exactly what a real run would delete, with the rule that decided; a real run lists what it
deleted, and what it left alone because it changed meanwhile (skipped). The list comes a page at a
time, so a large run prints as it goes. Deleting tags and manifests frees no space by itself: the
next garbage collection (artifact gc) removes the blobs nothing refers to any more.`,
  options: {
    "dry-run": { type: "boolean", description: "list what would be deleted; delete nothing" },
    "page-size": {
      type: "string",
      value: "<n>",
      description: "deletions per call (default 500, at most 5000)",
      check: (v) => (/^[1-9][0-9]{0,3}$/.test(v) ? undefined : "expected 1 to 5000"),
    },
  },
  examples: ["artifact retention run local/team --dry-run", "artifact retention run local/team/app", "artifact retention run --dry-run -o json"],
  async run(ctx, args) {
    const name = args.positionals[0];
    const scope = name === undefined ? undefined : await scopeOf(ctx, name);
    const dryRun = bool(args, "dry-run") ?? false;
    const pageSize = Number(str(args, "page-size") ?? 0);
    const totals = { repositories: 0, tagsExamined: 0, tagsDeleted: 0, manifestsDeleted: 0, skipped: 0, immutableKept: 0, repositoriesDisabled: 0 };
    const all: ReturnType<typeof deletionView>[] = [];
    let pageToken = "";
    let bytes = 0;
    let printedHeader = false;
    do {
      const page = await ctx.client().retention.runRetention({ scope, dryRun, pageSize, pageToken });
      for (const [k, v] of Object.entries(page.stats ?? {})) if (k in totals) totals[k as keyof typeof totals] += Number(v);
      const rows = page.deletions.map(deletionView);
      for (const r of rows) if (r.outcome !== "skipped" && r.target === "manifest") bytes += r.sizeBytes;
      if (ctx.format === "json") all.push(...rows);
      else if (rows.length > 0) {
        const table = formatTable(
          ["OUTCOME", "WHAT", "NAME", "REASON", "RULE"],
          rows.map((r) => [r.outcome, r.target, r.name, r.reason, r.rule]),
        );
        // One header for the whole run: later pages print their rows only.
        ctx.print(printedHeader ? table.slice(table.indexOf("\n") + 1) : table);
        printedHeader = true;
      }
      pageToken = page.nextPageToken;
    } while (pageToken);
    if (ctx.format === "json") {
      ctx.print(formatJson({ dryRun, deletions: all, stats: totals }));
      return;
    }
    const verb = dryRun ? "would delete" : "deleted";
    ctx.print(
      `${dryRun ? "Dry run, nothing was deleted: " : ""}${totals.repositories} repositories, ${totals.tagsExamined} tags examined; ` +
        `${verb} ${totals.tagsDeleted} tags and ${totals.manifestsDeleted} manifests (${humanBytes(bytes)} of manifests with what they reference, shared blobs included)` +
        `${totals.skipped ? `; ${totals.skipped} skipped (changed meanwhile)` : ""}${totals.immutableKept ? `; ${totals.immutableKept} immutable tags kept` : ""}` +
        `${totals.repositoriesDisabled ? `; ${totals.repositoriesDisabled} repositories under a disabled policy` : ""}.\n` +
        (dryRun || totals.manifestsDeleted + totals.tagsDeleted === 0 ? "" : "The next garbage collection frees the blobs nothing refers to any more.\n"),
    );
  },
};

export const retention: Group = {
  name: "retention",
  summary: "set, list and delete retention policies; run them (dry or real)",
  subcommands: [list, set, remove, run],
  default: "list",
};
