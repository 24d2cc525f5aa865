// `npm run admin -- create-token <account> [--name n] [--expires 30d]` and
// `npm run admin -- reset-password <user>` (the new password on stdin): for when nobody can sign
// in any more. It works on the database directly, with the service's settings, never through the
// API (which would need the credential that is missing). Both are written to the audit log.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { hashPassword } from "../auth/passwords.js";
import { accountKey } from "../auth/throttle.js";
import { hashTokenSecret, newTokenSecret } from "../auth/tokens.js";
import { loadConfig, loadDotEnv } from "../config.js";
import { openDatabase, type DatabaseHandle } from "../db/database.js";
import { checkPassword, checkTokenName } from "../domain/names.js";
import { createLogger } from "../log.js";
import { createStore, type Store } from "../store/index.js";
import type { AuditTrail } from "../store/audit.js";
import { createContentDriver } from "../content/index.js";

const USAGE = `Usage: npm run admin -- create-token <account> [--name <name>] [--expires <n>(m|h|d)]
       npm run admin -- reset-password <user>        (the new password is read from stdin)
       node dist/src/cli/admin.js …

For when nobody can sign in: works on the service's database directly, with its settings
(environment, then .env). On PostgreSQL it is safe while the service runs; the embedded PGlite
database belongs to one process: stop the service first (this command says so when it is running).

Commands:
  create-token <account>   a new API token for the user or robot; the secret is printed once on
                           stdout (nothing else is), e.g.  TOKEN=$(npm run -s admin -- create-token admin)
    --name <name>          the token's name (default: admin-cli)
    --expires <n>(m|h|d)   expires after that long, e.g. 30d (default: never)
  reset-password <user>    sets the user's password to the first line of stdin, and clears the
                           sign-in failures counted against the account
  --help                   print this text

Exit status: 0 done; 1 the account is not there, or the input is refused; 2 usage, configuration
or database error. Both commands are recorded in the audit log (actor "admin-cli").
`;

class Refused extends Error {}

const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30d` → milliseconds; undefined for anything else. */
function parseDuration(text: string): number | undefined {
  const m = /^([1-9][0-9]{0,5})([mhd])$/.exec(text);
  return m ? Number(m[1]) * UNITS[m[2]!]! : undefined;
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      options: { name: { type: "string" }, expires: { type: "string" }, help: { type: "boolean", default: false } },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`, { cause: err });
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [command, account, ...extra] = positionals;
  if (!command || !account || extra.length > 0 || !["create-token", "reset-password"].includes(command)) {
    throw new Error(`expected create-token <account> or reset-password <user>\n\n${USAGE}`);
  }
  if (command === "reset-password" && (values.name !== undefined || values.expires !== undefined)) {
    throw new Error(`reset-password takes no options\n\n${USAGE}`);
  }
  const expiresMs = values.expires === undefined ? undefined : parseDuration(values.expires);
  if (values.expires !== undefined && expiresMs === undefined)
    throw new Error(`--expires ${JSON.stringify(values.expires)}: expected <n>m, <n>h or <n>d, e.g. 30d`);
  const name = values.name ?? "admin-cli";
  const nameProblem = checkTokenName(name);
  if (nameProblem) throw new Error(`--name: ${nameProblem}`);
  // Read before the database is opened: a refused password costs no start-up.
  const password = command === "reset-password" ? await readPassword() : undefined;

  loadDotEnv();
  const config = loadConfig();
  if (config.database.kind === "pglite" && !existsSync(join(config.database.dataDir, "PG_VERSION"))) {
    throw new Error(`no embedded database in ${config.database.dataDir} (is DATA_DIR right? the service creates it at its first start)`);
  }
  // Logs (opening, migrations) go to stderr, quietly; stdout carries only the answer.
  const log = createLogger("warn", pino.destination(2));
  let database: DatabaseHandle;
  try {
    database = await openDatabase(config.database, log);
  } catch (err) {
    throw new Error(`cannot open the database: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  try {
    const store = await createStore(database.db, await createContentDriver(config), { exclusively: (id, task) => database.exclusively(id, task) });
    const trail: AuditTrail = { actorId: null, actorName: "admin-cli", requestId: randomUUID(), clientAddress: "" };
    if (command === "create-token") {
      process.stdout.write((await createToken(store, account, name, expiresMs, trail)) + "\n");
    } else {
      await resetPassword(store, account, password!, trail);
      process.stderr.write(`the password of ${account} is set\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof Refused) {
      process.stderr.write(`admin: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await database.close();
  }
}

async function createToken(store: Store, accountName: string, name: string, expiresMs: number | undefined, trail: AuditTrail): Promise<string> {
  const account = await store.accounts.findByName(accountName);
  if (!account) throw new Refused(`no account named ${JSON.stringify(accountName.slice(0, 100))}`);
  if (account.disabled) process.stderr.write(`warning: ${account.name} is disabled: the token will not work until it is enabled again\n`);
  const secret = newTokenSecret();
  await store.tokens.create(
    { accountId: account.id, name, secretHash: hashTokenSecret(secret), expireTime: expiresMs === undefined ? null : new Date(Date.now() + expiresMs) },
    trail,
  );
  return secret;
}

async function resetPassword(store: Store, userName: string, password: string, trail: AuditTrail): Promise<void> {
  const account = await store.accounts.findByName(userName);
  if (!account) throw new Refused(`no account named ${JSON.stringify(userName.slice(0, 100))}`);
  if (account.kind !== "user") throw new Refused(`${account.name} is a robot: robots have no password (create a token for it instead)`);
  await store.accounts.update(account.id, { passwordHash: await hashPassword(password) }, "", trail);
  await store.throttle.reset(accountKey(account.name));
  if (account.disabled) process.stderr.write(`warning: ${account.name} is disabled: enable it (UpdateAccount) before it can sign in\n`);
}

/** The first line of stdin; the password is never echoed, in messages either. */
async function readPassword(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write("new password (then Enter, and Ctrl-D): ");
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  const password = Buffer.concat(chunks).toString("utf8").split(/\r?\n/, 1)[0] ?? "";
  const problem = checkPassword(password);
  if (problem) throw new Error(`the password on stdin ${problem}`);
  return password;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`admin: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
