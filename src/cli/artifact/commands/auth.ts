// login, logout, whoami: the credential the other commands send.
import { AccountKind } from "../../../../gen/artifact/v1/account_pb.js";
import { Role, RoleScope, type RoleBinding } from "../../../../gen/artifact/v1/role_binding_pb.js";
import { bool, readStdin, str, type Context, type Leaf } from "../cli.js";
import { CliError, EXIT, usageError } from "../exit.js";
import { formatFields, formatJson } from "../output.js";
import { checkToken, configPath, normalizeUrl, readConfig, readTokenFile, writeConfig } from "../session.js";

const accountKind = (kind: AccountKind) => (kind === AccountKind.USER ? "user" : kind === AccountKind.ROBOT ? "robot" : "unspecified");
const roleName = (role: Role) => Role[role]?.toLowerCase() ?? String(role);

function roleView(b: RoleBinding) {
  return { role: roleName(b.role), scope: RoleScope[b.scope]?.toLowerCase() ?? String(b.scope), scopeName: b.scopeName || null };
}

const roleText = (b: RoleBinding) => (b.scope === RoleScope.GLOBAL ? `${roleName(b.role)} (global)` : `${roleName(b.role)} on ${b.scopeName || b.scopeId}`);

/** Reads a line from the terminal without echoing it. */
function promptHidden(ctx: Context, prompt: string): Promise<string> {
  const { stdin, stderr } = ctx;
  return new Promise((resolve, reject) => {
    let text = "";
    // Echo off before the prompt shows: a fast typist (or a script) may answer it at once.
    stdin.setRawMode(true);
    stderr.write(prompt);
    stdin.resume();
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off("data", onData);
      stderr.write("\n");
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return done();
        if (ch === "\u0003") return done(new CliError("interrupted", EXIT.usage));
        if (ch === "\u007f" || ch === "\b") text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on("data", onData);
  });
}

export const login: Leaf = {
  name: "login",
  args: ["<url>"],
  summary: "check an API token against the service and store it for later commands",
  description: `Signs in to the service at <url> with an API token (create one in the service, or with
artifact tokens create): checks it with WhoAmI, then stores the URL and the token in the config file
(${"$"}XDG_CONFIG_HOME/artifact/config.json, else ~/.config/artifact/config.json; directory 0700,
file 0600), and makes that URL the current one. The token is read from stdin, a file, or a prompt
that does not echo; never from the command line, and never printed.`,
  options: {
    "token-stdin": { type: "boolean", description: "read the token from stdin" },
    "token-file": { type: "string", value: "<file>", description: "read the token from a file" },
  },
  examples: [
    "artifact login http://localhost:8080 --token-file data/admin-token",
    'echo "$TOKEN" | artifact login https://artifacts.example.com --token-stdin',
  ],
  async run(ctx, args) {
    const url = normalizeUrl(args.positionals[0]!, "<url>");
    const file = str(args, "token-file");
    let token: string;
    if (bool(args, "token-stdin") && file !== undefined) throw usageError("login: give --token-stdin or --token-file, not both");
    if (bool(args, "token-stdin")) token = checkToken(await readStdin(ctx), "stdin");
    else if (file !== undefined) token = readTokenFile(file, "--token-file");
    else if (ctx.stdin.isTTY) token = checkToken(await promptHidden(ctx, "API token: "), "the token typed");
    else throw usageError("login: stdin is not a terminal; give --token-stdin or --token-file");

    const me = await ctx.connect(url, token).accounts.whoAmI({});
    if (!me.account) throw new CliError(`${url} did not take the token as an account's (signed in as ${me.authenticatedBy || "nobody"})`, EXIT.auth);
    const path = configPath(ctx.env);
    const config = readConfig(path);
    config.servers[url] = { token, account: me.account.name };
    config.current = url;
    writeConfig(config, path);
    if (ctx.format === "json") ctx.print(formatJson({ url, account: me.account.name, kind: accountKind(me.account.kind), configFile: path }));
    else ctx.print(`Signed in to ${url} as ${me.account.name} (${accountKind(me.account.kind)}); the token is stored in ${path}.\n`);
  },
};

export const logout: Leaf = {
  name: "logout",
  args: [],
  summary: "forget the token stored for the current (or --url's) service",
  description: `Removes the stored token of the service named by --url, else ARTIFACT_URL, else the current
one, from the config file. The token itself stays valid on the server: revoke it with
artifact tokens revoke if nobody should use it any more.`,
  async run(ctx) {
    const session = ctx.session();
    const path = configPath(ctx.env);
    const config = readConfig(path);
    const url = session.url;
    const removed = url !== undefined && config.servers[url] !== undefined;
    if (url !== undefined) delete config.servers[url];
    if (config.current === url) delete config.current;
    if (removed) writeConfig(config, path);
    if (ctx.format === "json") ctx.print(formatJson({ url: url ?? null, removed }));
    else if (removed) ctx.print(`Signed out of ${url}; its token is removed from ${path}.\n`);
    else ctx.print(`No token stored for ${url ?? "any service"}; nothing to do.\n`);
  },
};

export const whoami: Leaf = {
  name: "whoami",
  args: [],
  summary: "show the service, the account signed in, and its roles",
  description: `Asks the service who the credential belongs to (AccountService.WhoAmI) and shows its roles.
Says where the URL and the token came from (flag, environment or config file), never the token.`,
  async run(ctx) {
    const session = ctx.session();
    const me = await ctx.client().accounts.whoAmI({});
    if (ctx.format === "json") {
      ctx.print(
        formatJson({
          url: session.url,
          account: me.account ? { id: me.account.id, name: me.account.name, kind: accountKind(me.account.kind) } : null,
          authenticatedBy: me.authenticatedBy,
          credentialSource: session.tokenSource,
          roles: me.roleBindings.map(roleView),
        }),
      );
      return;
    }
    ctx.print(
      formatFields([
        ["Service", `${session.url!} (from ${session.urlSource})`],
        ["Account", me.account ? `${me.account.name} (${accountKind(me.account.kind)})` : "anonymous"],
        ["Signed in with", `${me.authenticatedBy}${session.token ? ` (from ${session.tokenSource})` : ""}`],
        ["Roles", me.roleBindings.map(roleText).join(", ") || "none"],
      ]),
    );
  },
};
