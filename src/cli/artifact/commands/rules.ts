// artifact rules list|add|delete: immutability rules (tags that are pushed once and never move),
// set on a registry, a namespace or a repository named as people name them.
import type { ImmutabilityRule } from "../../../../gen/artifact/v1/immutability_rule_pb.js";
import { str, type Context, type Group, type Leaf } from "../cli.js";
import { policyListFilter, SCOPE_SYNTAX, type ScopeRef } from "../resolve.js";
import { formatJson, formatTable, relativeTime } from "../output.js";
import { listPages, moreHint, PAGING_OPTIONS } from "../paging.js";

const SCOPE = SCOPE_SYNTAX;

const scopeOf = (ctx: Context, name: string): Promise<ScopeRef> => ctx.resolver().scope(name);

const SCOPE_KIND = { registryId: "registry", namespaceId: "namespace", repositoryId: "repository" } as const;

function ruleView(r: ImmutabilityRule) {
  return {
    id: r.id,
    scope: r.scope.case ? SCOPE_KIND[r.scope.case] : null,
    scopeName: r.scopeName,
    tagPattern: r.tagPattern,
    description: r.description,
  };
}

const list: Leaf = {
  name: "list",
  args: [`[${SCOPE}]`],
  summary: "list immutability rules (those that protect a scope's tags, or all you may read)",
  description: `Lists the rules that apply to the scope: its own and those of the scopes around it (a
registry's rules apply to every repository in it). Without a scope, every rule you may read. With
--own, only the rules set on the scope itself.`,
  options: { own: { type: "boolean", description: "only the rules set on the scope itself" }, ...PAGING_OPTIONS },
  examples: ["artifact rules list local/team/app", "artifact rules list local --own -o json"],
  async run(ctx, args) {
    const name = args.positionals[0];
    const scope = name === undefined ? undefined : await scopeOf(ctx, name);
    const filter = policyListFilter(scope, args.values.own === true);
    const listed = await listPages(args, async (page) => {
      const r = await ctx.client().immutabilityRules.listImmutabilityRules({ ...page, ...filter });
      return { items: r.immutabilityRules, nextPageToken: r.nextPageToken, totalSize: r.totalSize };
    });
    if (ctx.format === "json") {
      ctx.print(formatJson({ rules: listed.items.map(ruleView), nextPageToken: listed.nextPageToken, totalSize: listed.totalSize }));
      return;
    }
    ctx.print(
      formatTable(
        ["ID", "SCOPE", "TAG PATTERN", "CREATED", "DESCRIPTION"],
        listed.items.map((r) => [
          r.id,
          `${r.scope.case ? SCOPE_KIND[r.scope.case] : ""} ${r.scopeName}`,
          r.tagPattern,
          relativeTime(r.createTime),
          r.description,
        ]),
      ),
    );
    moreHint(ctx, listed, "rules");
  },
};

const add: Leaf = {
  name: "add",
  args: [SCOPE, "<tag-pattern>"],
  summary: "make the tags matching a pattern immutable in a scope",
  description: `Sets a rule on a registry, a namespace or a repository (admins of that scope): tags whose
whole name matches <tag-pattern> (RE2 syntax) can be pushed once and then never moved, renamed or
deleted while the rule stands; pushing the same manifest again is fine. Quote the pattern for
your shell.`,
  options: { description: { type: "string", value: "<text>", description: "what the rule is for" } },
  examples: ["artifact rules add local/team '^v[0-9]+\\.[0-9]+\\.[0-9]+$'", "artifact rules add local 'release-.*' --description 'releases never move'"],
  async run(ctx, args) {
    const scope = await scopeOf(ctx, args.positionals[0]!);
    const rule = await ctx.client().immutabilityRules.createImmutabilityRule({
      immutabilityRule: { scope, tagPattern: args.positionals[1]!, description: str(args, "description") ?? "" },
    });
    if (ctx.format === "json") ctx.print(formatJson(ruleView(rule)));
    else ctx.print(`Added rule ${rule.id}: tags matching ${rule.tagPattern} in ${rule.scopeName} are immutable.\n`);
  },
};

const remove: Leaf = {
  name: "delete",
  args: ["<id>"],
  summary: "delete an immutability rule (its tags can move again)",
  description: `Deletes the rule with this id (artifact rules list shows ids). The tags it protected can
be moved and deleted again, unless another rule matches them.`,
  examples: ["artifact rules delete 6b0e…"],
  async run(ctx, args) {
    const id = args.positionals[0]!;
    const rule = await ctx.client().immutabilityRules.getImmutabilityRule({ id });
    await ctx.client().immutabilityRules.deleteImmutabilityRule({ id, etag: rule.etag });
    if (ctx.format === "json") ctx.print(formatJson({ ...ruleView(rule), action: "deleted" }));
    else ctx.print(`Deleted rule ${rule.id} (${rule.tagPattern} in ${rule.scopeName}).\n`);
  },
};

export const rules: Group = {
  name: "rules",
  summary: "list, add and delete immutability rules (tags that never move)",
  subcommands: [list, add, remove],
  default: "list",
};
