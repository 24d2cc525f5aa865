// Configuration: defaults, every variable, clear refusals of bad values, .env handling,
// and the real entry point refusing to start on a bad value.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, describeDatabase, loadConfig, loadDotEnv } from "../src/config.js";
import { packageRoot } from "../src/paths.js";
import { TestPki } from "./support/tls.js";

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe("loadConfig", () => {
  it("defaults to embedded PGlite under ./data on ports 8080 and 9090", () => {
    const config = loadConfig({});
    expect(config.http).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(config.grpc).toEqual({ host: "127.0.0.1", port: 9090 });
    expect(config.database).toEqual({ kind: "pglite", dataDir: join(process.cwd(), "data", "pglite") });
    expect(config.logLevel).toBe("info");
    expect(config.logFormat).toBe("auto");
    expect(loadConfig({ LOG_FORMAT: "json" }).logFormat).toBe("json");
    expect(config.secretKey).toBeUndefined();
  });

  it("reads the seed's DB_* variables into a PostgreSQL configuration", () => {
    const config = loadConfig({
      DB_HOST: "db.internal",
      DB_PORT: "6543",
      DB_USER: "svc",
      DB_PASSWORD: "pw",
      DB_NAME: "catalog",
      DB_SSLMODE: "require",
      DB_TIMEZONE: "Europe/Berlin",
    });
    expect(config.database).toEqual({
      kind: "postgres",
      host: "db.internal",
      port: 6543,
      user: "svc",
      password: "pw",
      database: "catalog",
      sslMode: "require",
      timeZone: "Europe/Berlin",
      poolMax: 10,
      connectTimeoutMs: 1000,
      prepareStatements: true,
    });
    expect(describeDatabase(config.database)).not.toContain("pw");
  });

  it("prefers DATABASE_URL and never shows its password", () => {
    const config = loadConfig({ DATABASE_URL: "postgres://svc:topsecret@db:5432/catalog?sslmode=require", DB_HOST: "ignored" });
    expect(config.database).toMatchObject({ kind: "postgres", url: "postgres://svc:topsecret@db:5432/catalog?sslmode=require" });
    expect(loadConfig({ DATABASE_URL: "postgres://db/x", DB_CONNECT_TIMEOUT_MS: "250" }).database).toMatchObject({ connectTimeoutMs: 250 });
    expect(describeDatabase(config.database)).toBe("PostgreSQL at db:5432/catalog as svc");
  });

  it.each([
    [{ HTTP_PORT: "abc" }, "HTTP_PORT"],
    [{ GRPC_PORT: "70000" }, "GRPC_PORT"],
    [{ HTTP_PORT: "-1" }, "HTTP_PORT"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [{ LOG_FORMAT: "xml" }, "LOG_FORMAT"],
    [{ DB_HOST: "h", DB_SSLMODE: "maybe" }, "DB_SSLMODE"],
    [{ DB_HOST: "h", DB_PORT: "x" }, "DB_PORT"],
    [{ DATABASE_URL: "mysql://x" }, "DATABASE_URL"],
    [{ SECRET_KEY: "short" }, "SECRET_KEY"],
    [{ HTTP_HOST: "bad host" }, "HTTP_HOST"],
    [{ SHUTDOWN_TIMEOUT_MS: "soon" }, "SHUTDOWN_TIMEOUT_MS"],
    [{ DB_HOST: "h", DB_CONNECT_TIMEOUT_MS: "0" }, "DB_CONNECT_TIMEOUT_MS"],
  ])("refuses %j naming the variable", (env, variable) => {
    const found = problems(env);
    expect(found).toHaveLength(1);
    expect(found[0]).toContain(variable);
  });

  it("reports every bad value at once, and never echoes DATABASE_URL", () => {
    const found = problems({ HTTP_PORT: "abc", LOG_LEVEL: "loud", DATABASE_URL: "mysql://u:hunter2@x" });
    expect(found).toHaveLength(3);
    expect(found.join("\n")).not.toContain("hunter2");
  });

  it("stores content on the filesystem by default; CONTENT_STORE=s3 reads the S3_* settings and names each bad one", () => {
    expect(loadConfig({}).content).toEqual({ kind: "filesystem" });
    const s3 = loadConfig({
      CONTENT_STORE: "s3",
      S3_ENDPOINT: "http://127.0.0.1:9000",
      S3_BUCKET: "artifacts",
      S3_PREFIX: "registry",
      S3_ACCESS_KEY_ID: "AKIA",
      S3_SECRET_ACCESS_KEY: "sekrit",
      BLOB_REDIRECT: "true",
    }).content;
    expect(s3).toEqual({
      kind: "s3",
      s3: {
        endpoint: "http://127.0.0.1:9000",
        region: "us-east-1",
        bucket: "artifacts",
        prefix: "registry/",
        forcePathStyle: true,
        credentials: { accessKeyId: "AKIA", secretAccessKey: "sekrit" },
      },
      partSize: 16 * 1024 * 1024,
      partConcurrency: 4,
      redirect: true,
      redirectSeconds: 300,
    });
    // AWS itself: virtual-host addressing and the SDK's own credentials chain.
    expect(loadConfig({ CONTENT_STORE: "s3", S3_BUCKET: "artifacts", S3_REGION: "eu-west-1" }).content).toMatchObject({
      s3: { endpoint: undefined, region: "eu-west-1", forcePathStyle: false, credentials: undefined },
    });
    const found = problems({
      CONTENT_STORE: "s3",
      S3_ENDPOINT: "ftp://user:hunter2@host",
      S3_PREFIX: "/abs",
      S3_SECRET_ACCESS_KEY: "hunter3",
      S3_PART_SIZE_MB: "4",
      BLOB_REDIRECT: "yes",
    });
    expect(found.map((p) => p.split(/[=:]/)[0])).toEqual([
      "S3_BUCKET",
      "S3_ENDPOINT",
      "S3_PREFIX",
      "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY",
      "S3_PART_SIZE_MB",
      "BLOB_REDIRECT",
    ]);
    expect(found.join("\n")).not.toMatch(/hunter[23]/);
    expect(problems({ CONTENT_STORE: "s4" })[0]).toMatch(/^CONTENT_STORE=/);
    // S3 settings without CONTENT_STORE=s3 are a mistake worth saying, not ignoring.
    expect(problems({ S3_BUCKET: "artifacts" })[0]).toMatch(/S3_BUCKET: set only with CONTENT_STORE=s3/);
  });

  it("reads the upstream timeouts and retries, with defaults, and checks them", () => {
    expect(loadConfig({}).upstream).toMatchObject({
      timeouts: { connectMs: 10_000, headersMs: 30_000, bodyIdleMs: 30_000 },
      retry: { attempts: 3, baseDelayMs: 200, maxDelayMs: 10_000 },
    });
    const set = loadConfig({
      UPSTREAM_CONNECT_TIMEOUT_MS: "1500",
      UPSTREAM_HEADERS_TIMEOUT_MS: "2500",
      UPSTREAM_BODY_IDLE_TIMEOUT_MS: "3500",
      UPSTREAM_RETRY_ATTEMPTS: "1",
      UPSTREAM_RETRY_BASE_DELAY_MS: "50",
      UPSTREAM_RETRY_MAX_DELAY_MS: "50",
    });
    expect(set.upstream).toMatchObject({
      timeouts: { connectMs: 1500, headersMs: 2500, bodyIdleMs: 3500 },
      retry: { attempts: 1, baseDelayMs: 50, maxDelayMs: 50 },
    });
    expect(problems({ UPSTREAM_CONNECT_TIMEOUT_MS: "0" })).toEqual(['UPSTREAM_CONNECT_TIMEOUT_MS="0": expected an integer from 100 to 600000']);
    expect(problems({ UPSTREAM_RETRY_ATTEMPTS: "11" })).toEqual(['UPSTREAM_RETRY_ATTEMPTS="11": expected an integer from 1 to 10']);
    expect(problems({ UPSTREAM_HEADERS_TIMEOUT_MS: "soon" })[0]).toMatch(/^UPSTREAM_HEADERS_TIMEOUT_MS="soon"/);
    expect(problems({ UPSTREAM_RETRY_BASE_DELAY_MS: "500", UPSTREAM_RETRY_MAX_DELAY_MS: "100" })).toEqual([
      "UPSTREAM_RETRY_MAX_DELAY_MS=100: must be at least UPSTREAM_RETRY_BASE_DELAY_MS (500)",
    ]);
  });

  it("reads the event and webhook settings: pulls off by default, on, or sampled; retries with backoff", () => {
    expect(loadConfig({}).events).toEqual({ pullSampleRate: 0, retentionDays: 7 });
    expect(loadConfig({}).webhooks).toEqual({
      timeoutMs: 10_000,
      retry: { attempts: 12, baseDelayMs: 10_000, maxDelayMs: 3_600_000 },
      concurrency: 8,
      pollIntervalMs: 5_000,
    });
    expect(loadConfig({ EVENTS_PULL: "on" }).events.pullSampleRate).toBe(1);
    expect(loadConfig({ EVENTS_PULL: "0.05" }).events.pullSampleRate).toBe(0.05);
    expect(loadConfig({ EVENTS_PULL: "off", EVENTS_RETENTION_DAYS: "0" }).events).toEqual({ pullSampleRate: 0, retentionDays: 0 });
    expect(problems({ EVENTS_PULL: "sometimes" })).toEqual([
      'EVENTS_PULL="sometimes": expected off, on, or the share of pulls to record (a number from 0 to 1, e.g. 0.05)',
    ]);
    expect(problems({ EVENTS_PULL: "1.5" })[0]).toMatch(/^EVENTS_PULL="1.5"/);
    expect(problems({ WEBHOOK_RETRY_BASE_DELAY_MS: "5000", WEBHOOK_RETRY_MAX_DELAY_MS: "1000" })).toEqual([
      "WEBHOOK_RETRY_MAX_DELAY_MS=1000: must be at least WEBHOOK_RETRY_BASE_DELAY_MS (5000)",
    ]);
    expect(problems({ WEBHOOK_CONCURRENCY: "0" })).toEqual(['WEBHOOK_CONCURRENCY="0": expected an integer from 1 to 256']);
  });

  it("MANIFEST_MAX_BYTES: 4 MiB by default, at most 64 MiB (pushes and upstream reads alike)", () => {
    expect(loadConfig({}).registry.manifestMaxBytes).toBe(4 * 1024 * 1024);
    expect(loadConfig({ MANIFEST_MAX_BYTES: String(8 * 1024 * 1024) }).registry.manifestMaxBytes).toBe(8 * 1024 * 1024);
    expect(problems({ MANIFEST_MAX_BYTES: String(65 * 1024 * 1024) })[0]).toMatch(/^MANIFEST_MAX_BYTES=/);
  });

  it("runs one process by default; WORKERS takes a number or auto on PostgreSQL only", () => {
    expect(loadConfig({}).workers).toBe(1);
    const pg = { DATABASE_URL: "postgres://u@db/artifact" };
    expect(loadConfig({ ...pg, WORKERS: "3" }).workers).toBe(3);
    expect(loadConfig({ ...pg, WORKERS: "auto" }).workers).toBe(availableParallelism());
    expect(problems({ ...pg, WORKERS: "0" })).toEqual(['WORKERS="0": expected an integer from 1 to 256']);
    expect(problems({ ...pg, WORKERS: "many" })).toEqual(['WORKERS="many": expected an integer from 1 to 256']);
    expect(problems({ WORKERS: "2" })[0]).toMatch(/^WORKERS="2": more than one worker needs PostgreSQL/);
  });

  it("accepts SECRET_KEY as 64 hex digits or 32 bytes of base64", () => {
    expect(loadConfig({ SECRET_KEY: "ab".repeat(32) }).secretKey).toEqual(Buffer.alloc(32, 0xab));
    expect(loadConfig({ SECRET_KEY: Buffer.alloc(32, 1).toString("base64") }).secretKey).toEqual(Buffer.alloc(32, 1));
    expect(loadConfig({ SECRET_KEY: Buffer.alloc(32, 0xfb).toString("base64url") }).secretKey).toEqual(Buffer.alloc(32, 0xfb));
  });

  it("refuses a SECRET_KEY that only looks like base64 of 32 bytes, without echoing it", () => {
    // Buffer.from(…, "base64") skips unknown characters: these would decode to 32 bytes.
    const key = Buffer.alloc(32, 2).toString("base64");
    for (const bad of [`${key.slice(0, 20)} ${key.slice(20)}`, `${key}!!`, key.slice(0, 40), "ab".repeat(31)]) {
      const found = problems({ SECRET_KEY: bad });
      expect(found).toEqual(["SECRET_KEY: expected 32 bytes as 64 hex digits or base64 (e.g. `openssl rand -base64 32`)"]);
    }
  });

  it("reads SECRET_KEY_PREVIOUS as a comma list of keys in either encoding, in order", () => {
    expect(loadConfig({}).previousSecretKeys).toEqual([]);
    const config = loadConfig({
      SECRET_KEY: "ab".repeat(32),
      SECRET_KEY_PREVIOUS: ` ${"cd".repeat(32)} ,${Buffer.alloc(32, 3).toString("base64")},`,
    });
    expect(config.previousSecretKeys).toEqual([Buffer.alloc(32, 0xcd), Buffer.alloc(32, 3)]);
  });

  it("names each bad SECRET_KEY_PREVIOUS entry by its place, never by its value", () => {
    const good = Buffer.alloc(32, 4).toString("base64");
    const found = problems({ SECRET_KEY_PREVIOUS: `${good},not-a-key-SECRETVALUE,${good},${"ef".repeat(16)}` });
    expect(found).toEqual([
      "SECRET_KEY_PREVIOUS: entry 2 of 4: expected 32 bytes as 64 hex digits or base64 (e.g. `openssl rand -base64 32`)",
      "SECRET_KEY_PREVIOUS: entry 4 of 4: expected 32 bytes as 64 hex digits or base64 (e.g. `openssl rand -base64 32`)",
    ]);
    expect(found.join("\n")).not.toContain("SECRETVALUE");
  });

  it("reads the identity settings, with auth on by default, and never echoes a secret", () => {
    expect(loadConfig({}).auth).toEqual({ anonymousAdmin: false, service: "artifact-service", tokenTtlSeconds: 300 });
    expect(loadConfig({}).audit).toEqual({ retentionDays: 90 });
    const token = "t".repeat(40);
    const config = loadConfig({
      AUTH_ANONYMOUS_ADMIN: "true",
      ADMIN_TOKEN: token,
      ADMIN_PASSWORD: "a-long-password",
      AUTH_SERVICE: "registry.example.com",
      AUTH_TOKEN_REALM: "https://registry.example.com/auth/token",
      AUTH_TOKEN_TTL_SECONDS: "600",
      AUDIT_RETENTION_DAYS: "0",
    });
    expect(config.auth).toEqual({
      anonymousAdmin: true,
      adminToken: token,
      adminPassword: "a-long-password",
      service: "registry.example.com",
      tokenRealm: "https://registry.example.com/auth/token",
      tokenTtlSeconds: 600,
    });
    expect(config.audit.retentionDays).toBe(0);
    const found = problems({
      AUTH_ANONYMOUS_ADMIN: "yes",
      ADMIN_TOKEN: "SHORTSECRET",
      ADMIN_PASSWORD: "PWSECRET",
      AUTH_SERVICE: 'a"b',
      AUTH_TOKEN_REALM: "ftp://x",
      AUTH_TOKEN_TTL_SECONDS: "5",
      AUDIT_RETENTION_DAYS: "-1",
    });
    for (const name of [
      "AUTH_ANONYMOUS_ADMIN",
      "ADMIN_TOKEN",
      "ADMIN_PASSWORD",
      "AUTH_SERVICE",
      "AUTH_TOKEN_REALM",
      "AUTH_TOKEN_TTL_SECONDS",
      "AUDIT_RETENTION_DAYS",
    ]) {
      expect(
        found.some((p) => p.startsWith(name)),
        name,
      ).toBe(true);
    }
    expect(found.join("\n")).not.toMatch(/SHORTSECRET|PWSECRET/);
  });
});

describe("TLS settings", () => {
  const pki = TestPki.create();
  const ca = pki.ca();
  const cert = pki.issue(ca, { commonName: "localhost" });

  it("are off by default; with the two files on, relative paths resolved, client certificates required once a CA is given", () => {
    expect(loadConfig({}).tls).toBeUndefined();
    const config = loadConfig({ TLS_CERT_FILE: cert.certFile, TLS_KEY_FILE: cert.keyFile, TLS_CLIENT_CA_FILE: ca.certFile });
    expect(config.tls).toEqual({
      certFile: cert.certFile,
      keyFile: cert.keyFile,
      clientCaFile: ca.certFile,
      clientAuth: "require",
      hstsMaxAgeSeconds: 31_536_000,
    });
    expect(loadConfig({ TLS_CERT_FILE: relative(process.cwd(), cert.certFile), TLS_KEY_FILE: cert.keyFile }).tls?.certFile).toBe(cert.certFile);
    const optional = loadConfig({
      TLS_CERT_FILE: cert.certFile,
      TLS_KEY_FILE: cert.keyFile,
      TLS_CLIENT_CA_FILE: ca.certFile,
      TLS_CLIENT_AUTH: "optional",
      TLS_HSTS_MAX_AGE_SECONDS: "0",
    });
    expect(optional.tls).toMatchObject({ clientAuth: "optional", hstsMaxAgeSeconds: 0 });
  });

  it("name what is wrong with each variable", () => {
    const both = { TLS_CERT_FILE: cert.certFile, TLS_KEY_FILE: cert.keyFile };
    expect(problems({ TLS_CLIENT_CA_FILE: ca.certFile })).toEqual(["TLS_CLIENT_CA_FILE: needs TLS_CERT_FILE and TLS_KEY_FILE"]);
    expect(problems({ TLS_CERT_FILE: cert.certFile })).toEqual(["TLS_KEY_FILE: must be set together with TLS_CERT_FILE"]);
    expect(problems({ ...both, TLS_CLIENT_CA_FILE: ca.certFile, TLS_CLIENT_AUTH: "sometimes" })).toEqual([
      'TLS_CLIENT_AUTH="sometimes": expected one of require, optional',
    ]);
    expect(problems({ ...both, TLS_CERT_FILE: ca.keyFile })).toEqual([`TLS_CERT_FILE: ${ca.keyFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`]);
    expect(problems({ ...both, TLS_KEY_FILE: ca.keyFile })).toEqual([
      `TLS_KEY_FILE: ${ca.keyFile} is not the key of the certificate in ${cert.certFile} (CN=localhost)`,
    ]);
    const encrypted = pki.path("encrypted.key");
    writeFileSync(encrypted, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n");
    expect(problems({ ...both, TLS_KEY_FILE: encrypted })[0]).toMatch(/^TLS_KEY_FILE: .+ is encrypted; give the key without a passphrase/);
    const early = pki.issue(ca, { commonName: "localhost", notBefore: new Date(Date.now() + 3_600_000) });
    expect(problems({ TLS_CERT_FILE: early.certFile, TLS_KEY_FILE: early.keyFile })[0]).toMatch(/^TLS_CERT_FILE: .+: the certificate is not valid before /);
  });
});

describe(".env", () => {
  it("fills in what the environment lacks and never overrides it", () => {
    const dir = mkdtempSync(join(tmpdir(), "artifact-env-"));
    try {
      writeFileSync(join(dir, ".env"), "HTTP_PORT=1234\nLOG_LEVEL=debug\n# comment\nDATA_DIR=./x\n");
      const env: NodeJS.ProcessEnv = { LOG_LEVEL: "warn" };
      expect(loadDotEnv(dir, env)).toBe(true);
      expect(env).toEqual({ LOG_LEVEL: "warn", HTTP_PORT: "1234", DATA_DIR: "./x" });
      expect(loadDotEnv(join(dir, "missing"), env)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the entry point", () => {
  it("refuses to start on HTTP_PORT=abc with a message naming it, and exit code 2", () => {
    const result = spawnSync(process.execPath, ["--import", "tsx", join(packageRoot, "src/main.ts")], {
      env: { ...process.env, HTTP_PORT: "abc", DATA_DIR: join(tmpdir(), "artifact-never-created") },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('HTTP_PORT="abc": expected an integer from 0 to 65535');
  });
});

describe("documentation of the settings", () => {
  // Every variable config.ts reads, found in its source: the README table and .env.example must name each.
  const source = readFileSync(join(packageRoot, "src/config.ts"), "utf8");
  const variables = [...new Set([...source.matchAll(/\b(?:read|integer|oneOf|host)\("([A-Z][A-Z0-9_]+)"/g)].map((m) => m[1]!))];
  const readme = readFileSync(join(packageRoot, "README.md"), "utf8");
  const example = readFileSync(join(packageRoot, ".env.example"), "utf8");

  it("finds the variables", () => {
    expect(variables).toEqual(expect.arrayContaining(["HTTP_PORT", "DATABASE_URL", "SECRET_KEY", "GC_GRACE_MS"]));
  });

  it.each(variables)("%s is in the README's configuration table and in .env.example", (variable) => {
    expect(readme).toMatch(new RegExp("^\\|[^\\n]*`" + variable + "`", "m"));
    expect(example).toMatch(new RegExp("^#? ?" + variable + "=", "m"));
  });
});
