// artifact registries list|show|create|edit|delete|ping|sync
import { ConnectError } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { RegistryKind, type CredentialSchema, type RegistrySchema, type Registry, type SyncRegistryProgress } from "../../../../gen/artifact/v1/registry_pb.js";
import { bool, readStdin, str, type Args, type Context, type Group, type Leaf, type OptionSpec } from "../cli.js";
import { describeError, EXIT, usageError } from "../exit.js";
import { formatFields, formatJson, formatTable, relativeTime } from "../output.js";
import { listPages, moreHint, PAGING_OPTIONS } from "../paging.js";
import { SyncProgressView, tagCounts } from "../progress.js";
import { kindName, registryView } from "../views.js";

function registryFields(r: Registry): [string, string][] {
  const fields: [string, string][] = [
    ["Name", r.name],
    ["Kind", kindName(r.kind)],
  ];
  if (r.kind === RegistryKind.REMOTE) {
    fields.push(["URL", `${r.url}${r.insecure ? " (TLS not verified)" : ""}`], ["Credential", r.hasCredential ? "stored" : "none"]);
    const f = r.syncFilter;
    fields.push([
      "Sync filter",
      [f?.repositoryPrefix && `repositories ${f.repositoryPrefix}*`, f?.tagPattern && `tags /${f.tagPattern}/`].filter(Boolean).join(", ") || "everything",
    ]);
  } else {
    fields.push(["Auto-create", r.autoCreate === false ? "no (push only to repositories created through the API)" : "yes"]);
  }
  fields.push(
    ["Public", r.public ? "yes (anyone may pull)" : "no"],
    ["Description", r.description],
    ["Id", r.id],
    ["Created", relativeTime(r.createTime)],
    ["Updated", relativeTime(r.updateTime)],
  );
  return fields;
}

function printRegistry(ctx: Context, r: Registry, headline?: string): void {
  if (ctx.format === "json") ctx.print(formatJson(registryView(r)));
  else ctx.print((headline ? `${headline}\n` : "") + formatFields(registryFields(r)));
}

/** The upstream credential from --username/--password-stdin or --bearer-stdin; never from the command line. */
async function credentialFrom(ctx: Context, args: Args): Promise<MessageInitShape<typeof CredentialSchema> | undefined> {
  const username = str(args, "username");
  const password = bool(args, "password-stdin");
  const bearer = bool(args, "bearer-stdin");
  if (bearer && (username !== undefined || password)) throw usageError("--bearer-stdin goes alone, without --username or --password-stdin");
  if ((username === undefined) !== !password) throw usageError("--username and --password-stdin go together (the password is read from stdin)");
  if (bearer) {
    const token = await readStdin(ctx);
    if (token === "") throw usageError("--bearer-stdin: stdin is empty");
    return { kind: { case: "token", value: token } };
  }
  if (username !== undefined) return { kind: { case: "basic", value: { username, password: await readStdin(ctx) } } };
  return undefined;
}

const CREDENTIAL_OPTIONS: Record<string, OptionSpec> = {
  username: { type: "string", value: "<user>", description: "REMOTE: user name for the upstream (with --password-stdin)" },
  "password-stdin": { type: "boolean", description: "REMOTE: read the upstream password from stdin" },
  "bearer-stdin": { type: "boolean", description: "REMOTE: read a bearer token for the upstream from stdin" },
};

const SETTINGS_OPTIONS: Record<string, OptionSpec> = {
  url: { type: "string", value: "<url>", description: "REMOTE: the upstream registry's base URL (here --url is the registry's, not the service's)" },
  description: { type: "string", value: "<text>", description: "free text for people" },
  public: { type: "boolean", negatable: true, description: "anyone, signed in or not, may pull" },
  insecure: { type: "boolean", negatable: true, description: "REMOTE: do not verify the upstream's TLS certificate" },
  "auto-create": { type: "boolean", negatable: true, description: "HOSTED: a push creates missing namespaces and repositories (default yes)" },
  "sync-prefix": { type: "string", value: "<path>", description: "REMOTE: sync only upstream repositories whose path starts with this" },
  "sync-tags": { type: "string", value: "<re2>", description: "REMOTE: sync only tags this RE2 pattern matches in full, e.g. 'latest|v1\\..*'" },
};

const list: Leaf = {
  name: "list",
  args: [],
  summary: "list registries",
  description: "Lists the registries the credential may see, by name.",
  options: {
    query: { type: "string", value: "<text>", description: "only names containing this (case-insensitive)" },
    kind: { type: "string", value: "<hosted|remote>", description: "only registries of this kind" },
    ...PAGING_OPTIONS,
  },
  async run(ctx, args) {
    const kindText = str(args, "kind");
    const kind =
      kindText === undefined ? RegistryKind.UNSPECIFIED : kindText === "hosted" ? RegistryKind.HOSTED : kindText === "remote" ? RegistryKind.REMOTE : undefined;
    if (kind === undefined) throw usageError(`--kind ${JSON.stringify(kindText)}: expected hosted or remote`);
    const listed = await listPages(args, async (page) => {
      const r = await ctx.client().registries.listRegistries({ ...page, query: str(args, "query") ?? "", kind });
      return { items: r.registries, nextPageToken: r.nextPageToken, totalSize: r.totalSize };
    });
    if (ctx.format === "json") {
      ctx.print(formatJson({ registries: listed.items.map(registryView), nextPageToken: listed.nextPageToken, totalSize: listed.totalSize }));
      return;
    }
    ctx.print(
      formatTable(
        ["NAME", "KIND", "URL", "PUBLIC", "UPDATED", "DESCRIPTION"],
        listed.items.map((r) => [r.name, kindName(r.kind), r.url || "-", r.public ? "yes" : "no", relativeTime(r.updateTime), r.description]),
      ),
    );
    moreHint(ctx, listed, "registries");
  },
};

const show: Leaf = {
  name: "show",
  args: ["<name>"],
  summary: "show one registry's settings",
  description: "Shows a registry's kind, URL, sync filter, visibility and times (never its upstream credential).",
  async run(ctx, args) {
    printRegistry(ctx, await ctx.resolver().registry(args.positionals[0]!));
  },
};

const create: Leaf = {
  name: "create",
  args: ["<name>"],
  summary: "create a HOSTED or REMOTE registry",
  description: `Creates a registry. HOSTED (the default without --url): this service stores the images,
pushed to /v2/<name>/<namespace>/<repository>. REMOTE (the default with --url): an existing
registry at --url, whose catalog artifact registries sync imports and whose images the service
pulls through. An upstream credential is read from stdin, never taken from the command line.
Since --url here is the upstream's, give the service's URL before the command
(artifact --url <service> registries create …) or in ARTIFACT_URL.`,
  options: {
    kind: { type: "string", value: "<hosted|remote>", description: "the kind (default: remote with --url, else hosted)" },
    ...SETTINGS_OPTIONS,
    ...CREDENTIAL_OPTIONS,
  },
  examples: [
    "artifact registries create local --description 'our images'",
    "artifact registries create hub --url https://registry-1.docker.io --sync-prefix library/ --sync-tags 'latest|1\\..*'",
    'printf %s "$PASSWORD" | artifact registries create corp --url https://registry.corp.example --username ci --password-stdin',
  ],
  async run(ctx, args) {
    const url = str(args, "url");
    const kindText = str(args, "kind") ?? (url === undefined ? "hosted" : "remote");
    if (kindText !== "hosted" && kindText !== "remote") throw usageError(`--kind ${JSON.stringify(kindText)}: expected hosted or remote`);
    const kind = kindText === "hosted" ? RegistryKind.HOSTED : RegistryKind.REMOTE;
    if (kind === RegistryKind.REMOTE && url === undefined) throw usageError("a REMOTE registry needs --url (the upstream's base URL)");
    const credential = await credentialFrom(ctx, args);
    const prefix = str(args, "sync-prefix");
    const pattern = str(args, "sync-tags");
    const registry = await ctx.client().registries.createRegistry({
      registry: {
        name: args.positionals[0]!,
        kind,
        url: url ?? "",
        description: str(args, "description") ?? "",
        public: bool(args, "public") ?? false,
        insecure: bool(args, "insecure") ?? false,
        autoCreate: bool(args, "auto-create"),
        syncFilter: prefix !== undefined || pattern !== undefined ? { repositoryPrefix: prefix ?? "", tagPattern: pattern ?? "" } : undefined,
        credential,
      },
    });
    printRegistry(ctx, registry, `Created registry ${registry.name}.`);
  },
};

const edit: Leaf = {
  name: "edit",
  args: ["<name>"],
  summary: "change a registry's settings (only those given)",
  description: `Changes the settings given and nothing else (an update mask of exactly those fields),
guarded by the registry's etag: if someone changed it meanwhile, nothing is written (exit 4) and
running the command again applies the change to the new state. --clear-credential removes a stored
upstream credential. Give the service's URL before the command or in ARTIFACT_URL (--url here
is the upstream's).`,
  options: {
    rename: { type: "string", value: "<new-name>", description: "give the registry a new name (image names change with it)" },
    ...SETTINGS_OPTIONS,
    ...CREDENTIAL_OPTIONS,
    "clear-credential": { type: "boolean", description: "REMOTE: remove the stored upstream credential" },
  },
  examples: ["artifact registries edit local --description 'team images' --public", "artifact registries edit hub --sync-tags 'latest'"],
  async run(ctx, args) {
    const current = await ctx.resolver().registry(args.positionals[0]!);
    const registry: MessageInitShape<typeof RegistrySchema> = { id: current.id, etag: current.etag };
    const mask: string[] = [];
    const given: [field: string, key: keyof typeof registry, value: string | boolean | undefined][] = [
      ["name", "name", str(args, "rename")],
      ["url", "url", str(args, "url")],
      ["description", "description", str(args, "description")],
      ["public", "public", bool(args, "public")],
      ["insecure", "insecure", bool(args, "insecure")],
      ["auto_create", "autoCreate", bool(args, "auto-create")],
    ];
    for (const [field, key, value] of given) {
      if (value === undefined) continue;
      mask.push(field);
      Object.assign(registry, { [key]: value });
    }
    // The mask names sync_filter as a whole: keep the half not given (the etag guards the read).
    const prefix = str(args, "sync-prefix");
    const pattern = str(args, "sync-tags");
    if (prefix !== undefined || pattern !== undefined) {
      mask.push("sync_filter");
      registry.syncFilter = {
        repositoryPrefix: prefix ?? current.syncFilter?.repositoryPrefix ?? "",
        tagPattern: pattern ?? current.syncFilter?.tagPattern ?? "",
      };
    }
    const credential = await credentialFrom(ctx, args);
    if (credential && bool(args, "clear-credential")) throw usageError("--clear-credential and a new credential exclude each other");
    if (credential || bool(args, "clear-credential")) {
      mask.push("credential");
      registry.credential = credential;
    }
    if (mask.length === 0) throw usageError("nothing to change (see artifact registries edit --help for the settings)");
    const updated = await ctx.client().registries.updateRegistry({ registry, updateMask: { paths: mask } });
    printRegistry(ctx, updated, `Updated ${mask.join(", ")} of registry ${updated.name}.`);
  },
};

const remove: Leaf = {
  name: "delete",
  args: ["<name>"],
  summary: "delete a registry",
  description: `Deletes a registry. One that still has namespaces is refused (exit 4) unless --force,
which deletes its namespaces, repositories, tags and stored content with it.`,
  options: { force: { type: "boolean", description: "delete everything inside too" } },
  async run(ctx, args) {
    const registry = await ctx.resolver().registry(args.positionals[0]!);
    await ctx.client().registries.deleteRegistry({ id: registry.id, etag: registry.etag, force: bool(args, "force") ?? false });
    if (ctx.format === "json") ctx.print(formatJson({ deleted: registryView(registry) }));
    else ctx.print(`Deleted registry ${registry.name}.\n`);
  },
};

const ping: Leaf = {
  name: "ping",
  args: ["<name>"],
  summary: "check that a REMOTE registry's upstream answers and takes the credential",
  description: `Asks the service to call the upstream's /v2/ with the stored credential. Exits 0 when the
upstream answered and access works, 4 when it did not answer or refused the credential (the
result is printed either way).`,
  async run(ctx, args) {
    const registry = await ctx.resolver().registry(args.positionals[0]!);
    const r = await ctx.client().registries.pingRegistry({ id: registry.id });
    if (ctx.format === "json") {
      ctx.print(
        formatJson({
          registry: registry.name,
          url: registry.url,
          reachable: r.reachable,
          authenticated: r.authenticated,
          status: r.status,
          roundTripMs: r.roundTripMs,
          authScheme: r.authScheme,
          message: r.message,
        }),
      );
    } else {
      ctx.print(
        formatFields([
          ["Registry", `${registry.name} (${registry.url})`],
          ["Reachable", r.reachable ? `yes, HTTP ${r.status} in ${r.roundTripMs.toFixed(0)} ms` : "no"],
          [
            "Access",
            !r.reachable
              ? "unknown"
              : r.authenticated
                ? `yes${r.authScheme ? ` (${r.authScheme})` : " (anonymous)"}`
                : `refused${r.authScheme ? ` (${r.authScheme})` : ""}`,
          ],
          ["Message", r.message],
        ]),
      );
    }
    return r.reachable && r.authenticated ? EXIT.ok : EXIT.failure;
  },
};

function syncSummary(registry: string, last: SyncRegistryProgress | undefined, failed: { repository: string; error: string }[]) {
  return {
    registry,
    done: last?.done ?? false,
    repositoriesFound: last?.repositoriesFound ?? 0,
    repositoriesSynced: last?.repositoriesSynced ?? 0,
    tagsAdded: last?.tagsAdded ?? 0,
    tagsUpdated: last?.tagsUpdated ?? 0,
    tagsRemoved: last?.tagsRemoved ?? 0,
    errors: last?.errors ?? 0,
    failed,
    error: null as string | null,
  };
}

function progressView(p: SyncRegistryProgress) {
  return {
    repositoriesFound: p.repositoriesFound,
    repositoriesSynced: p.repositoriesSynced,
    tagsAdded: p.tagsAdded,
    tagsUpdated: p.tagsUpdated,
    tagsRemoved: p.tagsRemoved,
    errors: p.errors,
    repository: p.repository || null,
    error: p.error || null,
    removedTags: p.removedTags,
    done: p.done,
  };
}

const sync: Leaf = {
  name: "sync",
  args: ["<name>"],
  summary: "import a REMOTE registry's catalog and tags, with progress",
  description: `Imports the upstream's repositories and tags (within the registry's sync filter) and
shows progress on stderr: a bar on a terminal, a line every few seconds and one per failed
repository otherwise. Then the summary on stdout (-o json: as one JSON object). -o ndjson prints
every progress message as a JSON line on stdout instead, the last one with "done": true.
A repository that fails is reported and the sync goes on (exit 0, "errors" counts them); when
the upstream itself fails, the sync stops with that error, and running it again continues.`,
  options: { quiet: { type: "boolean", short: "q", description: "no progress on stderr" } },
  outputs: ["table", "json", "ndjson"],
  async run(ctx, args) {
    const registry = await ctx.resolver().registry(args.positionals[0]!);
    const mode = bool(args, "quiet") || ctx.format === "ndjson" ? "off" : ctx.stderr.isTTY ? "bar" : "lines";
    const view = new SyncProgressView(ctx.stderr, { mode });
    const failed: { repository: string; error: string }[] = [];
    let last: SyncRegistryProgress | undefined;
    let error: ConnectError | undefined;
    try {
      for await (const p of ctx.client().registries.syncRegistry({ id: registry.id })) {
        last = p;
        if (p.error) failed.push({ repository: p.repository, error: p.error });
        if (ctx.format === "ndjson") ctx.print(JSON.stringify(progressView(p)) + "\n");
        view.update(p);
      }
    } catch (err) {
      // The progress so far is still worth a summary; the error follows it.
      if (!(err instanceof ConnectError)) throw err;
      error = err;
    } finally {
      view.finish();
    }
    const summary = syncSummary(registry.name, last, failed);
    if (ctx.format === "json") {
      if (error) summary.error = describeError(error, undefined).message;
      ctx.print(formatJson(summary));
    } else if (ctx.format === "table" && last) {
      ctx.print(
        formatFields([
          ["Registry", registry.name],
          ["Repositories", `${summary.repositoriesFound} found, ${summary.repositoriesSynced} synced, ${summary.errors} failed`],
          ["Tags", tagCounts(summary).slice("tags ".length) + " (added, updated, removed)"],
        ]),
      );
      if (failed.length)
        ctx.print(
          "\n" +
            formatTable(
              ["FAILED REPOSITORY", "ERROR"],
              failed.map((f) => [f.repository || "(catalog)", f.error]),
            ),
        );
    }
    if (error) throw error;
  },
};

export const registries: Group = {
  name: "registries",
  summary: "list, create, change, delete, ping and sync registries",
  subcommands: [list, show, create, edit, remove, ping, sync],
  default: "list",
};
