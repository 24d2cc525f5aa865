// artifact tokens list|create|revoke: API tokens, the caller's own (or, for a global admin, anyone's).
import type { Token } from "../../../../gen/artifact/v1/token_pb.js";
import { str, type Group, type Leaf } from "../cli.js";
import { usageError } from "../exit.js";
import { formatFields, formatJson, formatTable, relativeTime } from "../output.js";
import { listPages, moreHint, PAGING_OPTIONS } from "../paging.js";
import { tokenStatus, tokenView } from "../views.js";

const ACCOUNT = { account: { type: "string" as const, value: "<name>", description: "another account's tokens (global admins); default: your own" } };

const UNIT_SECONDS: Record<string, number> = { m: 60, h: 3600, d: 86_400 };

/** `30d` → seconds. */
function parseTtl(text: string): bigint {
  const m = /^([1-9][0-9]{0,6})([mhd])$/.exec(text);
  if (!m) throw usageError(`--ttl ${JSON.stringify(text)}: expected <n>m, <n>h or <n>d, e.g. 90d`);
  return BigInt(Number(m[1]) * UNIT_SECONDS[m[2]!]!);
}

function tokenFields(t: Token): [string, string][] {
  return [
    ["Token", `${t.name} (id ${t.id})`],
    ["Account", t.accountName],
    ["Status", tokenStatus(t)],
    ["Expires", t.expireTime ? relativeTime(t.expireTime) : "never"],
  ];
}

const list: Leaf = {
  name: "list",
  args: [],
  summary: "list API tokens (never their secrets)",
  description: `Lists your API tokens, or with --account another account's; a global admin without
--account sees everyone's. Revoked and expired tokens are listed with their status.`,
  options: { ...ACCOUNT, query: { type: "string", value: "<text>", description: "only names containing this (case-insensitive)" }, ...PAGING_OPTIONS },
  async run(ctx, args) {
    const accountName = str(args, "account");
    const accountId = accountName === undefined ? "" : (await ctx.resolver().account(accountName)).id;
    const listed = await listPages(args, async (page) => {
      const r = await ctx.client().tokens.listTokens({ ...page, accountId, query: str(args, "query") ?? "" });
      return { items: r.tokens, nextPageToken: r.nextPageToken, totalSize: r.totalSize };
    });
    if (ctx.format === "json") {
      ctx.print(formatJson({ tokens: listed.items.map(tokenView), nextPageToken: listed.nextPageToken, totalSize: listed.totalSize }));
      return;
    }
    ctx.print(
      formatTable(
        ["ID", "NAME", "ACCOUNT", "STATUS", "CREATED", "EXPIRES", "LAST USED"],
        listed.items.map((t) => [
          t.id,
          t.name,
          t.accountName,
          tokenStatus(t),
          relativeTime(t.createTime),
          t.expireTime ? relativeTime(t.expireTime) : "never",
          relativeTime(t.lastUseTime) || "never",
        ]),
      ),
    );
    moreHint(ctx, listed, "tokens");
  },
};

const create: Leaf = {
  name: "create",
  args: ["<name>"],
  summary: "create an API token and print its secret, once",
  description: `Creates an API token named <name> (what it is for, e.g. ci-deploy) for you, or with
--account for another account (global admins; e.g. a robot). The secret is printed once on
stdout and nothing else is (details and a warning go to stderr), so TOKEN=$(artifact tokens
create ci) works; the service keeps only its hash and can never show it again.`,
  options: {
    ...ACCOUNT,
    ttl: { type: "string", value: "<n>(m|h|d)", description: "expires after that long, e.g. 90d (default: never)" },
    expires: { type: "string", value: "<time>", description: "expires at this ISO 8601 time, e.g. 2026-12-31T00:00:00Z" },
  },
  examples: ["artifact tokens create laptop --ttl 30d", "artifact tokens create pipeline --account ci-robot -o json"],
  async run(ctx, args) {
    const ttl = str(args, "ttl");
    const expires = str(args, "expires");
    if (ttl !== undefined && expires !== undefined) throw usageError("--ttl and --expires exclude each other");
    let expiration: { case: "ttl"; value: { seconds: bigint } } | { case: "expireTime"; value: { seconds: bigint; nanos: number } } | undefined;
    if (ttl !== undefined) expiration = { case: "ttl", value: { seconds: parseTtl(ttl) } };
    if (expires !== undefined) {
      const ms = Date.parse(expires);
      if (Number.isNaN(ms)) throw usageError(`--expires ${JSON.stringify(expires)}: expected an ISO 8601 time, e.g. 2026-12-31T00:00:00Z`);
      expiration = { case: "expireTime", value: { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 } };
    }
    const accountName = str(args, "account");
    const accountId = accountName === undefined ? "" : (await ctx.resolver().account(accountName)).id;
    const r = await ctx.client().tokens.createToken({ accountId, name: args.positionals[0]!, expiration });
    const token = r.token!;
    if (ctx.format === "json") ctx.print(formatJson({ token: tokenView(token), secret: r.secret }));
    else {
      ctx.stderr.write(formatFields(tokenFields(token)));
      ctx.print(`${r.secret}\n`);
    }
    ctx.note("warning: the secret is shown this once and cannot be read again; store it now.");
  },
};

const revoke: Leaf = {
  name: "revoke",
  args: ["<id|name>"],
  summary: "revoke an API token",
  description: `Revokes a token by id, or by name when exactly one active token you can see has it. It stops
working at once on the replica that revoked it, within 10 s on the others. Revoking a revoked
token changes nothing.`,
  examples: ["artifact tokens revoke laptop", "artifact tokens revoke 0b7c1c9e-…"],
  async run(ctx, args) {
    const token = await ctx.resolver().token(args.positionals[0]!);
    const revoked = await ctx.client().tokens.revokeToken({ id: token.id });
    if (ctx.format === "json") ctx.print(formatJson(tokenView(revoked)));
    else ctx.print(`Revoked token ${revoked.name} (id ${revoked.id}) of ${revoked.accountName}.\n`);
  },
};

export const tokens: Group = { name: "tokens", summary: "list, create and revoke API tokens", subcommands: [list, create, revoke], default: "list" };
