// Every setting, read from the environment once, validated, typed. A bad value stops the
// start-up with a message naming the variable; nothing else reads process.env (but src/cluster.ts,
// for the worker number a primary process hands its workers).
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { parseEnv } from "node:util";
import { checkOperatorToken, checkPassword } from "./domain/names.js";
import { readTlsMaterial, TlsFileError, type ClientAuth, type TlsSettings } from "./tls.js";
import { parseAllowedNetworks, type AllowedNetwork } from "./upstream/address-policy.js";
import type { RetryPolicy, UpstreamTimeouts } from "./upstream/settings.js";
import type { S3Settings } from "./content/s3-client.js";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
/** LOG_FORMAT: JSON lines, readable lines, or readable when stdout is a terminal (auto). */
export type LogFormat = "json" | "pretty" | "auto";
export type SslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full";

export interface Listen {
  host: string;
  port: number;
}

export type DatabaseConfig =
  | { kind: "pglite"; dataDir: string }
  | {
      kind: "postgres";
      /** Either a connection URL or discrete fields; the password is never logged. */
      url?: string;
      host?: string;
      port?: number;
      user?: string;
      password?: string;
      database?: string;
      sslMode?: SslMode;
      timeZone: string;
      poolMax: number;
      /** DB_CONNECT_TIMEOUT_MS: a connection not established in this time fails (the database is unreachable). */
      connectTimeoutMs: number;
      /** Prepare every statement on the server (default; off behind poolers that cannot keep them). */
      prepareStatements?: boolean;
    };

export interface Config {
  http: Listen;
  grpc: Listen;
  dataDir: string;
  database: DatabaseConfig;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** SECRET_KEY: 32-byte key that seals stored credentials; absent means "derive per deployment" (see secrets). */
  secretKey?: Buffer;
  /** SECRET_KEY_PREVIOUS: older keys, only for opening credentials sealed before a rotation. */
  previousSecretKeys: Buffer[];
  shutdownTimeoutMs: number;
  /** HEALTH_CHECK_INTERVAL_MS (default 1000): how often the database is pinged for gRPC health and /readyz. */
  healthCheckIntervalMs: number;
  /** HEALTH_CHECK_TIMEOUT_MS (default 1000): a ping slower than this counts as "database unreachable". */
  healthCheckTimeoutMs: number;
  registry: {
    /** Largest manifest accepted on push (413 MANIFEST_INVALID beyond), and read from an upstream. */
    manifestMaxBytes: number;
    /** Largest blob one upload may carry (413 SIZE_INVALID beyond). */
    blobMaxBytes: number;
    /** An upload session idle this long expires and its bytes are removed. */
    uploadTtlMs: number;
    /** UPLOAD_IDLE_TIMEOUT_MS: an upload body that delivers no byte this long is cut (the session stays). */
    uploadIdleTimeoutMs: number;
  };
  upstream: {
    /**
     * UPSTREAM_ALLOWED_NETWORKS: networks and host names REMOTE registries may reach although they
     * are loopback, private, link-local… (default: none; the service's own listeners never).
     */
    allowedNetworks: AllowedNetwork[];
    /** UPSTREAM_CONNECT_TIMEOUT_MS, UPSTREAM_HEADERS_TIMEOUT_MS, UPSTREAM_BODY_IDLE_TIMEOUT_MS. */
    timeouts: UpstreamTimeouts;
    /** UPSTREAM_RETRY_ATTEMPTS, UPSTREAM_RETRY_BASE_DELAY_MS, UPSTREAM_RETRY_MAX_DELAY_MS. */
    retry: RetryPolicy;
  };
  sync: {
    /** SYNC_CONCURRENCY (default 4): repositories a SyncRegistry reads from the upstream at once. */
    concurrency: number;
    /** SYNC_PAGE_SIZE (default 1000): `n` asked of the upstream's catalog pages. */
    pageSize: number;
  };
  gc: {
    /** Pause between background garbage collection runs; 0 turns the background runs off. */
    intervalMs: number;
    /** Unreferenced blobs and manifests younger than this are left alone (pushes in flight). */
    graceMs: number;
  };
  retention: {
    /** RETENTION_INTERVAL_MS (default a day; 0: off): pause between scheduled retention runs (every policy; one replica at a time). */
    intervalMs: number;
    /** PULL_TIME_FLUSH_MS (default 5000): how often recorded pulls are written; the staleness bound of last_pull_time. */
    pullTimeFlushMs: number;
  };
  limits: {
    /** MAX_REQUEST_BYTES: largest RPC or REST request body (not /v2/ uploads: BLOB_MAX_BYTES). */
    maxRequestBytes: number;
    /** HTTP_HEADERS_TIMEOUT_MS: a request head must arrive completely in this time. */
    headersTimeoutMs: number;
    /** HTTP_REQUEST_TIMEOUT_MS: a whole HTTP/1.1 request, body included; 0 = no limit. */
    requestTimeoutMs: number;
    /** HTTP_IDLE_TIMEOUT_MS: an idle keep-alive connection or HTTP/2 session is closed after this. */
    idleTimeoutMs: number;
  };
  cors: {
    /** CORS_ALLOWED_ORIGINS: origins browsers may call from; ["*"] = any; [] = none. */
    allowedOrigins: string[];
    /** CORS_MAX_AGE_SECONDS: how long a browser may reuse a preflight answer. */
    maxAgeSeconds: number;
  };
  /** METRICS_ENABLED: serve GET /metrics. */
  metricsEnabled: boolean;
  auth: {
    /** AUTH_ANONYMOUS_ADMIN: every caller is a global admin (development only; logged at warn). */
    anonymousAdmin: boolean;
    /** ADMIN_TOKEN: the API token of the admin the first start creates (never logged). */
    adminToken?: string;
    /** ADMIN_PASSWORD: that admin's password (never logged). */
    adminPassword?: string;
    /** AUTH_TOKEN_REALM: the token endpoint's URL in /v2/ challenges; default: built from the request. */
    tokenRealm?: string;
    /** AUTH_SERVICE: the service name in challenges, and the audience of the registry's JWTs. */
    service: string;
    /** AUTH_TOKEN_TTL_SECONDS: how long a registry JWT lives. */
    tokenTtlSeconds: number;
  };
  audit: {
    /** AUDIT_RETENTION_DAYS: garbage collection deletes older audit events; 0 keeps them for ever. */
    retentionDays: number;
  };
  events: EventSettings;
  webhooks: WebhookSettings;
  /**
   * READ_CACHE_MAX_BYTES (default 64 MiB; 0: off): memory each process may hold of HOSTED names,
   * manifests and tag pages answered without a database round trip (store/hot-cache.ts).
   */
  readCacheMaxBytes: number;
  /** WORKERS: server processes sharing the ports (1: this process serves). */
  workers: number;
  /** CONTENT_STORE: where blob bytes live (filesystem under DATA_DIR/blobs, or S3-compatible object storage). */
  content: ContentConfig;
  /** TLS_*: both listeners speak TLS only (absent: cleartext). */
  tls?: TlsSettings;
}

export interface EventSettings {
  /**
   * EVENTS_PULL (default off): the share of /v2/ manifest pulls recorded as `image.pulled` events,
   * 0 (off) to 1 (on: every pull), e.g. 0.01.
   */
  pullSampleRate: number;
  /** EVENTS_RETENTION_DAYS (default 7): garbage collection deletes older events whose deliveries are done; 0 keeps them. */
  retentionDays: number;
}

export interface WebhookSettings {
  /** WEBHOOK_TIMEOUT_MS (default 10 s): one delivery's whole request (connect, send, answer). */
  timeoutMs: number;
  /** WEBHOOK_RETRY_ATTEMPTS, WEBHOOK_RETRY_BASE_DELAY_MS, WEBHOOK_RETRY_MAX_DELAY_MS: attempts per delivery and the backoff between them. */
  retry: RetryPolicy;
  /** WEBHOOK_CONCURRENCY (default 8): deliveries one process sends at once. */
  concurrency: number;
  /** WEBHOOK_POLL_INTERVAL_MS (default 5 s): how often the queue is looked at when no notice wakes the deliverer. */
  pollIntervalMs: number;
}

export type ContentConfig =
  | { kind: "filesystem" }
  | {
      kind: "s3";
      s3: S3Settings;
      /** S3_PART_SIZE_MB (default 16, at least 5): bytes per part of a multipart upload, held in memory while sent. */
      partSize: number;
      /** S3_PART_CONCURRENCY (default 4): parts of one upload sent at once. */
      partConcurrency: number;
      /**
       * BLOB_REDIRECT (default false): /v2/ blob GETs answer 307 to a presigned URL of the object
       * store instead of streaming the bytes through the service; HEAD stays on the service.
       */
      redirect: boolean;
      /** BLOB_REDIRECT_TTL_SECONDS (default 300): how long a presigned URL is valid. */
      redirectSeconds: number;
    };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

/** Copies variables from `<dir>/.env` into `env` where the real environment has none. */
export function loadDotEnv(dir = process.cwd(), env: NodeJS.ProcessEnv = process.env): boolean {
  const file = resolve(dir, ".env");
  if (!existsSync(file)) return false;
  for (const [key, value] of Object.entries(parseEnv(readFileSync(file, "utf8")))) {
    if (env[key] === undefined) env[key] = value;
  }
  return true;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const HOUR = 3_600_000;

const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const LOG_FORMATS: readonly LogFormat[] = ["auto", "json", "pretty"];
const SSL_MODES: readonly SslMode[] = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];

type Read = (key: string, fallback: string) => string;
type ReadInteger = (key: string, fallback: number, min: number, max: number) => number;
type ReadOneOf = <T extends string>(key: string, fallback: T, allowed: readonly T[]) => T;

/** CONTENT_STORE and the S3_* settings; secrets are never echoed in a problem. */
function contentStore(env: NodeJS.ProcessEnv, read: Read, integer: ReadInteger, oneOf: ReadOneOf, problems: string[]): ContentConfig {
  const kind = oneOf("CONTENT_STORE", "filesystem", ["filesystem", "s3"] as const);
  const s3Only = ["S3_BUCKET", "S3_ENDPOINT", "S3_PREFIX", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"];
  if (kind === "filesystem") {
    const stray = s3Only.filter((key) => read(key, "") !== "");
    if (read("BLOB_REDIRECT", "false") === "true") stray.push("BLOB_REDIRECT");
    if (stray.length) problems.push(`${stray.join(", ")}: set only with CONTENT_STORE=s3 (CONTENT_STORE is "filesystem")`);
    return { kind };
  }
  const bucket = read("S3_BUCKET", "");
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    problems.push(`S3_BUCKET=${JSON.stringify(bucket)}: CONTENT_STORE=s3 needs a bucket name (3 to 63 lower-case letters, digits, dots, hyphens)`);
  }
  const endpoint = read("S3_ENDPOINT", "");
  if (endpoint) {
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      url = undefined;
    }
    if (!url || !["http:", "https:"].includes(url.protocol) || url.username || url.password) {
      problems.push("S3_ENDPOINT: expected an http:// or https:// URL without credentials in it");
    }
  }
  const region = read("S3_REGION", "us-east-1");
  if (!/^[a-z0-9-]+$/.test(region)) problems.push(`S3_REGION=${JSON.stringify(region)}: expected a region name such as us-east-1`);
  let prefix = read("S3_PREFIX", "");
  if (prefix.startsWith("/") || prefix.includes("//") || [...prefix].some((ch) => ch < " " || ch === "\u007f")) {
    problems.push(`S3_PREFIX=${JSON.stringify(prefix)}: expected a key prefix such as "registry/" (no leading slash, no empty segment)`);
  }
  if (prefix && !prefix.endsWith("/")) prefix += "/";
  const accessKeyId = read("S3_ACCESS_KEY_ID", "");
  const secretAccessKey = env.S3_SECRET_ACCESS_KEY ?? "";
  if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
    problems.push("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY: set both, or neither (then the AWS SDK's default credentials apply)");
  }
  const forcePathStyle = oneOf("S3_FORCE_PATH_STYLE", endpoint ? "true" : "false", ["true", "false"] as const) === "true";
  return {
    kind,
    s3: { endpoint: endpoint || undefined, region, bucket, prefix, forcePathStyle, credentials: accessKeyId ? { accessKeyId, secretAccessKey } : undefined },
    partSize: integer("S3_PART_SIZE_MB", 16, 5, 5120) * MiB,
    partConcurrency: integer("S3_PART_CONCURRENCY", 4, 1, 64),
    redirect: oneOf("BLOB_REDIRECT", "false", ["true", "false"] as const) === "true",
    redirectSeconds: integer("BLOB_REDIRECT_TTL_SECONDS", 300, 10, 7 * 24 * 3600),
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const read = (key: string, fallback: string): string => {
    const value = env[key]?.trim();
    return value === undefined || value === "" ? fallback : value;
  };
  const integer = (key: string, fallback: number, min: number, max: number): number => {
    const raw = read(key, String(fallback));
    const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      problems.push(`${key}=${JSON.stringify(raw)}: expected an integer from ${min} to ${max}`);
      return fallback;
    }
    return value;
  };
  const oneOf = <T extends string>(key: string, fallback: T, allowed: readonly T[]): T => {
    const raw = read(key, fallback);
    if (!allowed.includes(raw as T)) {
      problems.push(`${key}=${JSON.stringify(raw)}: expected one of ${allowed.join(", ")}`);
      return fallback;
    }
    return raw as T;
  };
  const host = (key: string): string => {
    const raw = read(key, "127.0.0.1");
    if (/[\s/]/.test(raw)) problems.push(`${key}=${JSON.stringify(raw)}: expected a host name or IP address`);
    return raw;
  };

  const dataDir = resolve(read("DATA_DIR", "./data"));
  const config: Config = {
    http: { host: host("HTTP_HOST"), port: integer("HTTP_PORT", 8080, 0, 65535) },
    grpc: { host: host("GRPC_HOST"), port: integer("GRPC_PORT", 9090, 0, 65535) },
    dataDir,
    database: { kind: "pglite", dataDir: resolve(dataDir, "pglite") },
    logLevel: oneOf("LOG_LEVEL", "info", LOG_LEVELS),
    logFormat: oneOf("LOG_FORMAT", "auto", LOG_FORMATS),
    shutdownTimeoutMs: integer("SHUTDOWN_TIMEOUT_MS", 15_000, 0, 600_000),
    healthCheckIntervalMs: integer("HEALTH_CHECK_INTERVAL_MS", 1_000, 50, 3_600_000),
    healthCheckTimeoutMs: integer("HEALTH_CHECK_TIMEOUT_MS", 1_000, 10, 600_000),
    registry: {
      manifestMaxBytes: integer("MANIFEST_MAX_BYTES", 4 * MiB, 1024, 64 * MiB),
      blobMaxBytes: integer("BLOB_MAX_BYTES", 64 * GiB, 1, Number.MAX_SAFE_INTEGER),
      uploadTtlMs: integer("UPLOAD_TTL_MS", 24 * HOUR, 60_000, 30 * 24 * HOUR),
      uploadIdleTimeoutMs: integer("UPLOAD_IDLE_TIMEOUT_MS", 60_000, 1_000, HOUR),
    },
    upstream: {
      allowedNetworks: allowedNetworks(read("UPSTREAM_ALLOWED_NETWORKS", ""), problems),
      timeouts: {
        connectMs: integer("UPSTREAM_CONNECT_TIMEOUT_MS", 10_000, 100, 600_000),
        headersMs: integer("UPSTREAM_HEADERS_TIMEOUT_MS", 30_000, 100, HOUR),
        bodyIdleMs: integer("UPSTREAM_BODY_IDLE_TIMEOUT_MS", 30_000, 100, HOUR),
      },
      retry: {
        attempts: integer("UPSTREAM_RETRY_ATTEMPTS", 3, 1, 10),
        baseDelayMs: integer("UPSTREAM_RETRY_BASE_DELAY_MS", 200, 1, 60_000),
        maxDelayMs: integer("UPSTREAM_RETRY_MAX_DELAY_MS", 10_000, 1, 600_000),
      },
    },
    sync: {
      concurrency: integer("SYNC_CONCURRENCY", 4, 1, 64),
      pageSize: integer("SYNC_PAGE_SIZE", 1000, 1, 1000),
    },
    gc: {
      intervalMs: integer("GC_INTERVAL_MS", HOUR, 0, 7 * 24 * HOUR),
      graceMs: integer("GC_GRACE_MS", HOUR, 60_000, 30 * 24 * HOUR),
    },
    retention: {
      intervalMs: integer("RETENTION_INTERVAL_MS", 24 * HOUR, 0, 30 * 24 * HOUR),
      pullTimeFlushMs: integer("PULL_TIME_FLUSH_MS", 5_000, 100, 300_000),
    },
    limits: {
      maxRequestBytes: integer("MAX_REQUEST_BYTES", 4 * MiB, 1024, 1024 * MiB),
      headersTimeoutMs: integer("HTTP_HEADERS_TIMEOUT_MS", 30_000, 100, 600_000),
      // No limit by default: one request on this port may be a multi-gigabyte blob upload.
      requestTimeoutMs: integer("HTTP_REQUEST_TIMEOUT_MS", 0, 0, 24 * HOUR),
      idleTimeoutMs: integer("HTTP_IDLE_TIMEOUT_MS", 60_000, 100, 3_600_000),
    },
    cors: {
      allowedOrigins: origins(read("CORS_ALLOWED_ORIGINS", ""), problems),
      // Chromium caps it at 7200, Firefox at 86400.
      maxAgeSeconds: integer("CORS_MAX_AGE_SECONDS", 7200, 0, 86_400),
    },
    previousSecretKeys: [],
    metricsEnabled: oneOf("METRICS_ENABLED", "true", ["true", "false"]) === "true",
    auth: {
      anonymousAdmin: oneOf("AUTH_ANONYMOUS_ADMIN", "false", ["true", "false"]) === "true",
      service: read("AUTH_SERVICE", "artifact-service"),
      tokenTtlSeconds: integer("AUTH_TOKEN_TTL_SECONDS", 300, 60, 3600),
    },
    audit: { retentionDays: integer("AUDIT_RETENTION_DAYS", 90, 0, 36_500) },
    events: { pullSampleRate: pullSampleRate(read("EVENTS_PULL", "off"), problems), retentionDays: integer("EVENTS_RETENTION_DAYS", 7, 0, 36_500) },
    webhooks: {
      timeoutMs: integer("WEBHOOK_TIMEOUT_MS", 10_000, 100, 600_000),
      retry: {
        attempts: integer("WEBHOOK_RETRY_ATTEMPTS", 12, 1, 100),
        baseDelayMs: integer("WEBHOOK_RETRY_BASE_DELAY_MS", 10_000, 1, HOUR),
        maxDelayMs: integer("WEBHOOK_RETRY_MAX_DELAY_MS", HOUR, 1, 24 * HOUR),
      },
      concurrency: integer("WEBHOOK_CONCURRENCY", 8, 1, 256),
      pollIntervalMs: integer("WEBHOOK_POLL_INTERVAL_MS", 5_000, 50, HOUR),
    },
    readCacheMaxBytes: integer("READ_CACHE_MAX_BYTES", 64 * MiB, 0, 64 * GiB),
    workers: read("WORKERS", "1") === "auto" ? availableParallelism() : integer("WORKERS", 1, 1, 256),
    content: { kind: "filesystem" },
  };
  config.content = contentStore(env, read, integer, oneOf, problems);
  const { baseDelayMs, maxDelayMs } = config.upstream.retry;
  if (maxDelayMs < baseDelayMs) {
    problems.push(`UPSTREAM_RETRY_MAX_DELAY_MS=${maxDelayMs}: must be at least UPSTREAM_RETRY_BASE_DELAY_MS (${baseDelayMs})`);
  }
  if (config.webhooks.retry.maxDelayMs < config.webhooks.retry.baseDelayMs) {
    problems.push(
      `WEBHOOK_RETRY_MAX_DELAY_MS=${config.webhooks.retry.maxDelayMs}: must be at least WEBHOOK_RETRY_BASE_DELAY_MS (${config.webhooks.retry.baseDelayMs})`,
    );
  }
  const { headersTimeoutMs, requestTimeoutMs } = config.limits;
  if (requestTimeoutMs > 0 && requestTimeoutMs < headersTimeoutMs) {
    problems.push(`HTTP_REQUEST_TIMEOUT_MS=${requestTimeoutMs}: must be 0 (no limit) or at least HTTP_HEADERS_TIMEOUT_MS (${headersTimeoutMs})`);
  }

  const databaseUrl = read("DATABASE_URL", "");
  const dbHost = read("DB_HOST", "");
  if (databaseUrl || dbHost) {
    const timeZone = read("DB_TIMEZONE", "UTC");
    if (!/^[A-Za-z0-9_+\-/:]+$/.test(timeZone)) {
      problems.push(`DB_TIMEZONE=${JSON.stringify(timeZone)}: expected a time zone name such as UTC or Europe/Berlin`);
    }
    const poolMax = integer("DB_POOL_MAX", 10, 1, 1000);
    const connectTimeoutMs = integer("DB_CONNECT_TIMEOUT_MS", 1_000, 50, 120_000);
    const prepareStatements = oneOf("DB_PREPARE_STATEMENTS", "true", ["true", "false"]) === "true";
    if (databaseUrl) {
      if (!/^postgres(ql)?:\/\//.test(databaseUrl)) {
        // Do not echo the value: it may hold a password.
        problems.push("DATABASE_URL: expected a postgres:// or postgresql:// URL");
      }
      config.database = { kind: "postgres", url: databaseUrl, timeZone, poolMax, connectTimeoutMs, prepareStatements };
    } else {
      config.database = {
        kind: "postgres",
        host: dbHost,
        port: integer("DB_PORT", 5432, 1, 65535),
        user: read("DB_USER", "postgres"),
        password: env.DB_PASSWORD ?? "",
        database: read("DB_NAME", "artifact"),
        sslMode: oneOf("DB_SSLMODE", "disable", SSL_MODES),
        timeZone,
        poolMax,
        connectTimeoutMs,
        prepareStatements,
      };
    }
  }

  if (config.workers > 1 && config.database.kind === "pglite") {
    problems.push(
      `WORKERS=${JSON.stringify(read("WORKERS", "1"))}: more than one worker needs PostgreSQL (DATABASE_URL or DB_HOST); the embedded PGlite belongs to one process`,
    );
  }

  // Never echo a key, not even a malformed one: it may be a real key pasted into the wrong place.
  const secret = read("SECRET_KEY", "");
  if (secret) {
    config.secretKey = secretKey(secret);
    if (!config.secretKey) problems.push(`SECRET_KEY: ${KEY_FORMAT}`);
  }
  const previous = read("SECRET_KEY_PREVIOUS", "")
    .split(",")
    .map((k) => k.trim())
    .filter((k) => k !== "");
  previous.forEach((raw, i) => {
    const key = secretKey(raw);
    if (key) config.previousSecretKeys.push(key);
    else problems.push(`SECRET_KEY_PREVIOUS: entry ${i + 1} of ${previous.length}: ${KEY_FORMAT}`);
  });

  // Secrets: a problem is named, the value never echoed.
  const adminToken = env.ADMIN_TOKEN?.trim();
  if (adminToken) {
    const problem = checkOperatorToken(adminToken);
    if (problem) problems.push(`ADMIN_TOKEN: ${problem}`);
    config.auth.adminToken = adminToken;
  }
  const adminPassword = env.ADMIN_PASSWORD;
  if (adminPassword !== undefined && adminPassword !== "") {
    const problem = checkPassword(adminPassword);
    if (problem) problems.push(`ADMIN_PASSWORD: ${problem}`);
    config.auth.adminPassword = adminPassword;
  }
  // It is put between quotes in WWW-Authenticate headers.
  if (!/^[A-Za-z0-9._:/@-]{1,255}$/.test(config.auth.service)) {
    problems.push(`AUTH_SERVICE=${JSON.stringify(config.auth.service.slice(0, 80))}: expected 1 to 255 of letters, digits, ".", "_", ":", "/", "@" and "-"`);
  }
  const realm = read("AUTH_TOKEN_REALM", "");
  if (realm) {
    if (!/^https?:\/\/[^\s"\\]+$/.test(realm) || !URL.canParse(realm)) {
      problems.push(
        `AUTH_TOKEN_REALM=${JSON.stringify(realm.slice(0, 200))}: expected the token endpoint's http(s) URL, e.g. https://registry.example.com/auth/token`,
      );
    }
    config.auth.tokenRealm = realm;
  }
  config.tls = tlsSettings(read, integer, problems);

  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * TLS_CERT_FILE and TLS_KEY_FILE (both or neither), TLS_CLIENT_CA_FILE, TLS_CLIENT_AUTH,
 * TLS_HSTS_MAX_AGE_SECONDS. The files are read and checked here, so a start with a bad one stops
 * with the variable named; src/http/tls.ts reads them again when they change.
 */
function tlsSettings(
  read: (key: string, fallback: string) => string,
  integer: (key: string, fallback: number, min: number, max: number) => number,
  problems: string[],
): TlsSettings | undefined {
  const certFile = read("TLS_CERT_FILE", "");
  const keyFile = read("TLS_KEY_FILE", "");
  const clientCaFile = read("TLS_CLIENT_CA_FILE", "");
  const clientAuthRaw = read("TLS_CLIENT_AUTH", "");
  const hstsMaxAgeSeconds = integer("TLS_HSTS_MAX_AGE_SECONDS", 31_536_000, 0, 2 ** 31 - 1);
  if (!certFile && !keyFile) {
    for (const key of ["TLS_CLIENT_CA_FILE", "TLS_CLIENT_AUTH"]) if (read(key, "")) problems.push(`${key}: needs TLS_CERT_FILE and TLS_KEY_FILE`);
    return undefined;
  }
  if (!certFile || !keyFile) {
    problems.push(`${certFile ? "TLS_KEY_FILE" : "TLS_CERT_FILE"}: must be set together with ${certFile ? "TLS_CERT_FILE" : "TLS_KEY_FILE"}`);
    return undefined;
  }
  let clientAuth: ClientAuth = "require";
  if (clientAuthRaw) {
    if (clientAuthRaw !== "require" && clientAuthRaw !== "optional")
      problems.push(`TLS_CLIENT_AUTH=${JSON.stringify(clientAuthRaw)}: expected one of require, optional`);
    else if (!clientCaFile) problems.push("TLS_CLIENT_AUTH: needs TLS_CLIENT_CA_FILE (the CA that signs client certificates)");
    else clientAuth = clientAuthRaw;
  }
  const settings: TlsSettings = {
    certFile: resolve(certFile),
    keyFile: resolve(keyFile),
    clientCaFile: clientCaFile ? resolve(clientCaFile) : undefined,
    clientAuth,
    hstsMaxAgeSeconds,
  };
  try {
    readTlsMaterial(settings);
  } catch (err) {
    if (!(err instanceof TlsFileError)) throw err;
    problems.push(err.message);
  }
  return settings;
}

const KEY_FORMAT = "expected 32 bytes as 64 hex digits or base64 (e.g. `openssl rand -base64 32`)";

/** A 32-byte key from 64 hex digits or base64 (standard or URL alphabet, padding optional); undefined otherwise. */
function secretKey(raw: string): Buffer | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(raw)) return Buffer.from(raw, "hex");
  // Checked strictly: Buffer.from(…, "base64") skips characters it does not know.
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(raw)) return undefined;
  const key = Buffer.from(raw, "base64");
  return key.length === 32 ? key : undefined;
}

/** CORS_ALLOWED_ORIGINS: a comma list of origins (scheme://host[:port]), or "*" alone. */
function origins(raw: string, problems: string[]): string[] {
  const list = raw
    .split(",")
    .map((o) => o.trim())
    .filter((o) => o !== "");
  if (list.includes("*")) {
    if (list.length > 1) problems.push(`CORS_ALLOWED_ORIGINS=${JSON.stringify(raw)}: "*" allows every origin; list nothing else with it`);
    return ["*"];
  }
  const result: string[] = [];
  for (const origin of list) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      // reported below
    }
    // An origin has no path, query or credentials: what a browser sends in the Origin header.
    if (!parsed || !/^https?:\/\/[^/?#@\s]+\/?$/i.test(origin)) {
      problems.push(`CORS_ALLOWED_ORIGINS: ${JSON.stringify(origin)} is not an origin; expected scheme://host[:port] such as https://app.example.com`);
      continue;
    }
    result.push(parsed.origin);
  }
  return result;
}

/** EVENTS_PULL: `off`, `on`, or the share of pulls to record (a number from 0 to 1, e.g. 0.05). */
function pullSampleRate(raw: string, problems: string[]): number {
  if (raw === "off") return 0;
  if (raw === "on") return 1;
  const rate = /^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(raw) ? Number(raw) : NaN;
  if (Number.isNaN(rate)) {
    problems.push(`EVENTS_PULL=${JSON.stringify(raw.slice(0, 40))}: expected off, on, or the share of pulls to record (a number from 0 to 1, e.g. 0.05)`);
    return 0;
  }
  return rate;
}

function allowedNetworks(raw: string, problems: string[]): AllowedNetwork[] {
  const parsed = parseAllowedNetworks(raw);
  problems.push(...parsed.problems);
  return parsed.networks;
}

/** Where the database is, for logs: never the password. */
export function describeDatabase(db: DatabaseConfig): string {
  if (db.kind === "pglite") return `embedded PGlite in ${db.dataDir}`;
  if (db.url) {
    try {
      const url = new URL(db.url);
      return `PostgreSQL at ${url.host}${url.pathname}${url.username ? ` as ${decodeURIComponent(url.username)}` : ""}`;
    } catch {
      return "PostgreSQL (DATABASE_URL)";
    }
  }
  return `PostgreSQL at ${db.host}:${db.port}/${db.database} as ${db.user} (sslmode ${db.sslMode})`;
}
