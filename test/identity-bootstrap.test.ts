// The first start (the admin, its token file mode 0600, a log that names the file and never the
// secret), ADMIN_PASSWORD for automation, the admin CLI as an operator runs it (refused while the
// service holds the embedded database, then a token and a new password that work), and the
// brute-force throttle on a stream of wrong passwords.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino, type Logger } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { AuditOutcome } from "../gen/artifact/v1/audit_pb.js";
import { packageRoot } from "../src/paths.js";
import { startServer, type RunningServer } from "../src/server.js";
import { createScratchDatabase, databaseKinds, postgresConfig } from "./support/database.js";
import { ADMIN_TOKEN, basic, identityClients, startAuthServer } from "./support/identity.js";
import { testConfig } from "./support/server.js";

function capturedLog(): { log: Logger; text: () => string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString("utf8"));
      done();
    },
  });
  return { log: pino({ level: "info" }, sink), text: () => lines.join("") };
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `npm run admin -- …` as an operator runs it, with the service's settings in the environment. */
function admin(env: Record<string, string>, args: string[], stdin?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", join(packageRoot, "src/cli/admin.ts"), ...args],
      { cwd: packageRoot, timeout: 120_000, env: { PATH: process.env.PATH ?? "", ...env } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(stdin ?? "");
  });
}

const dirs: string[] = [];
function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "artifact-bootstrap-"));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.each(databaseKinds())("bootstrap and the admin CLI, on %s", (kind) => {
  it("creates the admin once, its token in DATA_DIR/admin-token (0600), logged by file name only; the CLI mends lost access", async () => {
    const dataDir = scratchDir();
    const scratch = kind === "postgres" ? await createScratchDatabase() : undefined;
    const database = scratch ? postgresConfig(scratch.url) : { kind: "pglite" as const, dataDir: join(dataDir, "pglite") };
    const env: Record<string, string> = { DATA_DIR: dataDir, LOG_LEVEL: "warn", ...(scratch ? { DATABASE_URL: scratch.url } : {}) };
    const config = testConfig(dataDir, { database, auth: { anonymousAdmin: false, service: "artifact-service", tokenTtlSeconds: 300 } });
    const start = async (log: Logger) => startServer(config, log);
    let server: RunningServer | undefined;
    try {
      const first = capturedLog();
      server = await start(first.log);
      const file = join(dataDir, "admin-token");
      const token = readFileSync(file, "utf8").trim();
      expect(token).toMatch(/^art_[A-Za-z0-9_-]{43}$/);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(first.text()).toContain(file);
      expect(first.text()).not.toContain(token);
      expect(first.text()).not.toContain(token.slice(4));
      const url = `http://127.0.0.1:${server.http.port}`;
      expect((await identityClients(url, token).accounts.whoAmI({})).account?.name).toBe("admin");

      if (kind === "pglite") {
        // The embedded database belongs to the running service: the CLI says so and changes nothing.
        const busy = await admin(env, ["create-token", "admin"]);
        expect(busy.code).toBe(2);
        expect(busy.stderr).toMatch(/in use by another artifact-service process.*stop it first/);
        await server.close();
        server = undefined;
      }
      const created = await admin(env, ["create-token", "admin", "--name", "rescue", "--expires", "1d"]);
      expect(created.stderr).toBe("");
      expect(created.code).toBe(0);
      const rescue = created.stdout.trim();
      expect(rescue).toMatch(/^art_[A-Za-z0-9_-]{43}$/);
      const reset = await admin(env, ["reset-password", "admin"], "a-new-admin-password\n");
      expect(reset.code).toBe(0);
      expect(reset.stdout).toBe("");
      expect(reset.stderr).not.toContain("a-new-admin-password");
      const refused = await admin(env, ["reset-password", "admin"], "short\n");
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain("at least 10 characters");
      expect(refused.stderr).not.toContain("short\n");
      const nobody = await admin(env, ["create-token", "nobody"]);
      expect(nobody.code).toBe(1);
      expect(nobody.stderr).toContain('no account named "nobody"');
      const usage = await admin(env, ["create-token", "admin", "--expires", "soon"]);
      expect(usage.code).toBe(2);
      expect(usage.stderr).toContain("--expires");
      const help = await admin(env, ["--help"]);
      expect(help.stdout).toContain("create-token <account>");

      const second = capturedLog();
      server ??= await start(second.log);
      const url2 = `http://127.0.0.1:${server.http.port}`;
      // A later start makes no second admin and no new file.
      expect(second.text()).not.toContain("first start");
      expect(readFileSync(file, "utf8").trim()).toBe(token);
      const c = identityClients(url2, rescue);
      expect((await c.accounts.whoAmI({})).account?.name).toBe("admin");
      const tokens = await c.tokens.listTokens({});
      expect(tokens.tokens.find((t) => t.name === "rescue")?.expireTime).toBeDefined();
      const v2 = await fetch(`${url2}/v2/`, { headers: { authorization: basic("admin", "a-new-admin-password") } });
      expect(v2.status).toBe(200);
      const events = await c.audit.listAuditEvents({ actor: "admin-cli" });
      expect(events.auditEvents.map((e) => e.action).sort()).toEqual(["account.password", "token.create"]);
    } finally {
      await server?.close();
      await scratch?.drop();
    }
    // Seven CLI processes, each opening the database, and two starts: minutes on a loaded machine.
  }, 300_000);

  it("ADMIN_PASSWORD and ADMIN_TOKEN make the first start deterministic; no token file is written", async () => {
    const { log, text } = capturedLog();
    const server = await startAuthServer(kind, { settings: { adminPassword: "operator-chosen-password" }, log });
    try {
      expect(() => statSync(join(server.dataDir, "admin-token"))).toThrow();
      expect(text()).not.toContain("operator-chosen-password");
      expect(text()).not.toContain(ADMIN_TOKEN);
      expect(text()).toContain("ADMIN_PASSWORD");
      const res = await fetch(`${server.httpUrl}/v2/`, { headers: { authorization: basic("admin", "operator-chosen-password") } });
      expect(res.status).toBe(200);
      expect((await identityClients(server.httpUrl, ADMIN_TOKEN).accounts.whoAmI({})).account?.name).toBe("admin");
    } finally {
      await server.stop();
    }
  });

  it("logs AUTH_ANONYMOUS_ADMIN at warn on every start", async () => {
    const { log, text } = capturedLog();
    const server = await startAuthServer(kind, { settings: { anonymousAdmin: true }, log });
    try {
      expect(text()).toMatch(/"level":40.*AUTH_ANONYMOUS_ADMIN is on/);
      // Anyone is an admin now, even without a credential.
      expect((await identityClients(server.httpUrl).accounts.listAccounts({})).accounts.map((a) => a.name)).toContain("admin");
    } finally {
      await server.stop();
    }
  });

  it("slows a stream of wrong passwords down, counting in the database, and records each failure", async () => {
    // Short waits so the test is quick; the delays asserted are the ones the throttle chose.
    const server = await startAuthServer(kind, { auth: { throttle: { threshold: 2, baseMs: 20, maxMs: 1000 } } });
    try {
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${server.httpUrl}/auth/token?scope=repository:a/b/c:pull`, {
          headers: { authorization: basic("admin", `wrong-password-${i}`) },
        });
        expect(res.status).toBe(401);
      }
      const failures = await identityClients(server.httpUrl, ADMIN_TOKEN).audit.listAuditEvents({ action: "auth.sign_in", orderBy: "event_time" });
      expect(failures.auditEvents.map((e) => [AuditOutcome[e.outcome], e.actorName, e.detail])).toEqual([
        ["FAILURE", "admin", "password: wrong password"],
        ["FAILURE", "admin", "password: wrong password"],
        ["FAILURE", "admin", "password: wrong password (delayed 20 ms)"],
        ["FAILURE", "admin", "password: wrong password (delayed 40 ms)"],
        ["FAILURE", "admin", "password: wrong password (delayed 80 ms)"],
      ]);
      expect(failures.auditEvents.every((e) => e.clientAddress === "127.0.0.1" && e.requestId !== "")).toBe(true);
      // The counts are rows every replica reads.
      const rows: unknown = await server.database.db.execute("select key, failures from auth_throttle order by key");
      // postgres.js answers an array, PGlite an object with rows.
      const list = (Array.isArray(rows) ? rows : ((rows as { rows?: unknown[] }).rows ?? [])) as { key: string; failures: number }[];
      expect(list.map((r) => [r.key, Number(r.failures)])).toEqual([
        ["account:admin", 5],
        ["address:127.0.0.1", 5],
      ]);
    } finally {
      await server.stop();
    }
  });
});
