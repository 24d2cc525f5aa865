// artifact namespaces list, repos list, tags list: what is in the catalog, by name.
import type { Repository } from "../../../../gen/artifact/v1/repository_pb.js";
import { bool, str, type Context, type Group, type Leaf } from "../cli.js";
import { usageError } from "../exit.js";
import { imagePath, parseImageName, parseScope } from "../image-ref.js";
import { formatJson, formatTable, humanBytes, relativeTime, shortDigest } from "../output.js";
import { listPages, moreHint, pageSize, PAGING_OPTIONS, type Listed } from "../paging.js";
import { allPages } from "../resolve.js";
import { namespaceView, repositoryView, tagView } from "../views.js";

const QUERY = { query: { type: "string" as const, value: "<text>", description: "only names containing this (case-insensitive)" } };

const namespacesList: Leaf = {
  name: "list",
  args: ["<registry>"],
  summary: "list the namespaces of a registry",
  description: "Lists the namespaces of <registry> that the credential may see, by name.",
  options: { ...QUERY, ...PAGING_OPTIONS },
  examples: ["artifact namespaces list local"],
  async run(ctx, args) {
    const registry = await ctx.resolver().registry(args.positionals[0]!);
    const listed = await listPages(args, async (page) => {
      const r = await ctx.client().namespaces.listNamespaces({ ...page, registryId: registry.id, query: str(args, "query") ?? "" });
      return { items: r.namespaces, nextPageToken: r.nextPageToken, totalSize: r.totalSize };
    });
    if (ctx.format === "json") {
      ctx.print(
        formatJson({ namespaces: listed.items.map((n) => namespaceView(n, registry.name)), nextPageToken: listed.nextPageToken, totalSize: listed.totalSize }),
      );
      return;
    }
    ctx.print(
      formatTable(
        ["NAMESPACE", "PUBLIC", "UPDATED", "DESCRIPTION"],
        listed.items.map((n) => [`${registry.name}/${n.name}`, n.public ? "yes" : "no", relativeTime(n.updateTime), n.description]),
      ),
    );
    moreHint(ctx, listed, "namespaces");
  },
};

interface NamedRepository {
  repository: Repository;
  registry: string;
  namespace: string;
}

function printRepositories(ctx: Context, listed: Listed<NamedRepository>): void {
  if (ctx.format === "json") {
    ctx.print(
      formatJson({
        repositories: listed.items.map((r) => repositoryView(r.repository, r.registry, r.namespace)),
        nextPageToken: listed.nextPageToken,
        totalSize: listed.totalSize,
      }),
    );
    return;
  }
  ctx.print(
    formatTable(
      ["REPOSITORY", "UPDATED", "DESCRIPTION"],
      listed.items.map((r) => [`${r.registry}/${r.namespace}/${r.repository.name}`, relativeTime(r.repository.updateTime), r.repository.description]),
    ),
  );
  moreHint(ctx, listed, "repositories");
}

const reposList: Leaf = {
  name: "list",
  args: ["[<registry>[/<namespace>]]"],
  summary: "list repositories: of a namespace, of a registry, or all",
  description: `Lists repositories by their image name (<registry>/<namespace>/<repository>): those of one
namespace, of every namespace of one registry, or of the whole catalog the credential may see.
For a whole registry the namespaces are read one after another and every page of each is
shown (--page-size sets the size of each request; --page-token does not apply).`,
  options: { ...QUERY, ...PAGING_OPTIONS },
  examples: ["artifact repos list local/team", "artifact repos list local", "artifact repos list --all -o json"],
  async run(ctx, args) {
    const scopeText = args.positionals[0];
    const query = str(args, "query") ?? "";
    const client = ctx.client();
    if (scopeText === undefined) {
      const [paths, listed] = await Promise.all([
        ctx.resolver().namespacePaths(),
        listPages(args, async (page) => {
          const r = await client.repositories.listRepositories({ ...page, query });
          return { items: r.repositories, nextPageToken: r.nextPageToken, totalSize: r.totalSize };
        }),
      ]);
      const named = listed.items.map((repository) => {
        const path = paths.get(repository.namespaceId) ?? { registry: "?", namespace: repository.namespaceId };
        return { repository, ...path };
      });
      return printRepositories(ctx, { ...listed, items: named });
    }
    const scope = parseScope(scopeText, "<registry>[/<namespace>]");
    if (scope.namespace !== undefined) {
      const { registry, namespace } = await ctx.resolver().namespace(scope.registry, scope.namespace);
      const listed = await listPages(args, async (page) => {
        const r = await client.repositories.listRepositories({ ...page, namespaceId: namespace.id, query });
        return { items: r.repositories, nextPageToken: r.nextPageToken, totalSize: r.totalSize };
      });
      return printRepositories(ctx, {
        ...listed,
        items: listed.items.map((repository) => ({ repository, registry: registry.name, namespace: namespace.name })),
      });
    }
    if (str(args, "page-token") !== undefined) throw usageError("--page-token needs a namespace (<registry>/<namespace>): a registry's list spans several");
    const registry = await ctx.resolver().registry(scope.registry);
    const size = pageSize(args) ?? 1000;
    const items: NamedRepository[] = [];
    for await (const namespace of allPages(async (pageToken) => {
      const r = await client.namespaces.listNamespaces({ registryId: registry.id, pageSize: 1000, pageToken });
      return { items: r.namespaces, next: r.nextPageToken };
    })) {
      for await (const repository of allPages(async (pageToken) => {
        const r = await client.repositories.listRepositories({ namespaceId: namespace.id, query, pageSize: size, pageToken });
        return { items: r.repositories, next: r.nextPageToken };
      })) {
        items.push({ repository, registry: registry.name, namespace: namespace.name });
      }
    }
    printRepositories(ctx, { items, nextPageToken: "", totalSize: items.length });
  },
};

const SORTS: Record<string, string> = {
  push: "push_time desc",
  name: "name",
  created: "create_time desc",
  updated: "update_time desc",
};

const tagsList: Leaf = {
  name: "list",
  args: ["<registry>/<namespace>/<repository>"],
  summary: "list the tags of a repository, newest push first",
  description: `Lists a repository's tags with the digest they point to, the size a pull downloads and
when they were pushed. Sorted by push time, newest first, unless --sort says otherwise;
--reverse turns the order around.`,
  options: {
    sort: { type: "string", value: "<push|name|created|updated>", description: "order (default push: newest first; name: A to Z)" },
    reverse: { type: "boolean", description: "the other way round" },
    trunc: { type: "boolean", negatable: true, description: "short digests in the table (the default; --no-trunc: whole ones)" },
    ...QUERY,
    ...PAGING_OPTIONS,
  },
  examples: ["artifact tags list local/team/app", "artifact tags list local/team/app --sort name --all -o json"],
  async run(ctx, args) {
    const name = parseImageName(args.positionals[0]!, "repository");
    const sortText = str(args, "sort") ?? "push";
    let orderBy = SORTS[sortText];
    if (orderBy === undefined) throw usageError(`--sort ${JSON.stringify(sortText)}: expected ${Object.keys(SORTS).join(", ")}`);
    if (bool(args, "reverse")) orderBy = orderBy.endsWith(" desc") ? orderBy.slice(0, -5) : `${orderBy} desc`;
    const { repository } = await ctx.resolver().repository(name);
    const listed = await listPages(args, async (page) => {
      const r = await ctx.client().tags.listTags({ ...page, repositoryId: repository.id, orderBy, query: str(args, "query") ?? "" });
      return { items: r.tags, nextPageToken: r.nextPageToken, totalSize: r.totalSize };
    });
    const image = imagePath(name);
    if (ctx.format === "json") {
      ctx.print(formatJson({ tags: listed.items.map((t) => tagView(t, image)), nextPageToken: listed.nextPageToken, totalSize: listed.totalSize }));
      return;
    }
    const digest = bool(args, "trunc") === false ? (d: string) => d : shortDigest;
    ctx.print(
      formatTable(
        ["TAG", "DIGEST", "SIZE", "PUSHED"],
        listed.items.map((t) => [t.name, digest(t.digest), humanBytes(t.sizeBytes), relativeTime(t.pushTime)]),
        [2],
      ),
    );
    moreHint(ctx, listed, "tags");
  },
};

export const namespaces: Group = { name: "namespaces", summary: "list the namespaces of a registry", subcommands: [namespacesList], default: "list" };
export const repos: Group = { name: "repos", summary: "list repositories", subcommands: [reposList], default: "list" };
export const tags: Group = { name: "tags", summary: "list the tags of a repository", subcommands: [tagsList], default: "list" };
