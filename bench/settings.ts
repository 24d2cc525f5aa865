// The command line (each option also as an environment variable), parsed and checked once.
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { DatabaseKind } from "./databases.js";
import type { ClientChoice, Protocol } from "./load/index.js";
import type { ScenarioName } from "./scenarios.js";
import { DEFAULT_SCENARIOS, SCENARIO_NAMES } from "./scenarios.js";

export const SUITES = ["tags", "rest", "images", "registry", "auth", "hot", "pull"] as const;
export type Suite = (typeof SUITES)[number];

export const HELP = `usage: npm run bench -- [options]   (each option also as the environment variable shown)
  --suite LIST         tags,rest,images,registry,auth,hot,pull (all)  BENCH_SUITE
                         tags      issue 2: GetTag/ListTags over Connect and gRPC beside a no-database ceiling
                         rest      issue 3: GetTag over REST, Connect and gRPC on PostgreSQL; REST ÷ Connect
                         images    issue 4: a big blob through the service (REST, Connect stream) vs straight
                                   from docker-registry; sync of many repositories from it
                         registry  issue 5: /v2/ beside docker-registry: manifest GET, tags/list, blob GET,
                                   skopeo push, memory while 8 clients pull the blob
                         auth      issue 10: /v2/ manifest GET and GetTag with credentials (auth on) vs
                                   auth off, on PostgreSQL; the token endpoint's throughput
                         hot       issue 16: /v2/ manifest GET/HEAD by tag and digest, tags/list, beside
                                   docker-registry and a node:http hello world; the cross-process bound
                         pull      issue 16: cold pull-through of the big blob (/v2/, REST, Connect) vs
                                   docker-registry as a proxy of the same upstream, fresh caches each row
  --db LIST            pglite,postgres (per suite: tags both, rest, images, auth and pull postgres,
                       registry postgres then pglite)  BENCH_DB
 tags and rest suites (--duration, --rounds, --warmup, --timeout, --concurrency also for auth; the first four for the wrk rows of registry):
  --protocols LIST     connect,grpc,rest (tags: connect,grpc)  BENCH_PROTOCOLS
  --calls LIST         ceiling,GetTag,ListTags         BENCH_CALLS
                       (+ diagnostics: GetTag's query run other ways, see bench/diagnostics.ts)
  --duration S         measured seconds per load row (tags, rest 10; auth 8; registry 6)  BENCH_DURATION
  --rounds N           run every row N times, report the median (tags 1, rest, registry, auth, pull 3)  BENCH_ROUNDS
  --warmup S           warm-up seconds per row (2)     BENCH_WARMUP
  --timeout S          a slower call is an error (5)   BENCH_TIMEOUT
  --concurrency N      calls in flight (32)            BENCH_CONCURRENCY
  --connections N      HTTP/2 sessions for gRPC (4)    BENCH_CONNECTIONS
  --tags N             tags seeded (tags 10000, rest 2000)  BENCH_TAGS
  --deep-page N        the deep ListTags page (90)     BENCH_DEEP_PAGE
  --client C           auto (wrk for HTTP/1.1 when installed) | node   BENCH_CLIENT
 images and registry suites:
  --blob-mib N         size of the big blob in MiB (512)            BENCH_BLOB_MIB
  --blob-rounds N      downloads of the big blob per row (5)        BENCH_BLOB_ROUNDS
  --push-rounds N      skopeo pushes of the big image per row (3)   BENCH_PUSH_ROUNDS
  --blob-clients N     clients pulling the blob at once (8)         BENCH_BLOB_CLIENTS
  --sync-repos N       upstream repositories to sync (1000)         BENCH_SYNC_REPOS
  --sync-tags N        tags per synced repository (10)              BENCH_SYNC_TAGS
  --list-tags N        tags in the tags/list repository (1000)      BENCH_LIST_TAGS
  --cache DIR          where the big image is built once (bench/.cache)  BENCH_CACHE
 pull suite:
  --pull-paths LIST    peer,v2,rest,connect: the cold paths timed (their warm rows with them)  BENCH_PULL_PATHS
  --warm-reads N       reads of the cached blob after each cold pull (1)  BENCH_PULL_WARM_READS
 all suites:
  --log-level L        server LOG_LEVEL (info)         BENCH_LOG_LEVEL
  --pool N             server DB_POOL_MAX (10)         BENCH_DB_POOL_MAX
  --workers N          server WORKERS on PostgreSQL, images and registry suites (1)  BENCH_WORKERS
  --profile DIR        write a server CPU profile per measured row into DIR   BENCH_PROFILE
  --out FILE           report file (bench/results/latest.md)                  BENCH_OUT
PostgreSQL: BENCH_DATABASE_URL, or a throwaway cluster (Debian's postgresql).
Peers: wrk, curl, skopeo, docker-registry (Debian packages).`;

export const PULL_PATHS = ["peer", "v2", "rest", "connect"] as const;
export type PullPath = (typeof PULL_PATHS)[number];

export interface Settings {
  suites: Suite[];
  /** Undefined: each suite's own default. */
  databases?: DatabaseKind[];
  protocols?: Protocol[];
  calls: ScenarioName[];
  /** Undefined: each suite's own default. */
  durationSeconds?: number;
  rounds?: number;
  warmupSeconds: number;
  timeoutSeconds: number;
  concurrency: number;
  connections: number;
  tagCount?: number;
  deepPage: number;
  logLevel: string;
  poolMax: string;
  /** WORKERS of the service on PostgreSQL in the image and registry suites. */
  workers: number;
  client: ClientChoice;
  blobMiB: number;
  blobRounds: number;
  pushRounds: number;
  blobClients: number;
  syncRepos: number;
  syncTags: number;
  listTags: number;
  /** The pull suite's cold paths (peer and v2 also have warm rows). */
  pullPaths: PullPath[];
  /** Reads of the cached blob after each cold pull of the pull suite. */
  warmReads: number;
  cacheDir: string;
  profileDir?: string;
  out: string;
}

const BENCH_DIR = dirname(new URL(import.meta.url).pathname);

export function parseSettings(argv = process.argv.slice(2)): Settings {
  const { values: args } = parseArgs({
    args: argv,
    options: {
      suite: { type: "string" },
      db: { type: "string" },
      protocols: { type: "string" },
      calls: { type: "string" },
      duration: { type: "string" },
      rounds: { type: "string" },
      warmup: { type: "string" },
      timeout: { type: "string" },
      concurrency: { type: "string" },
      connections: { type: "string" },
      tags: { type: "string" },
      "deep-page": { type: "string" },
      "log-level": { type: "string" },
      pool: { type: "string" },
      workers: { type: "string" },
      client: { type: "string" },
      "blob-mib": { type: "string" },
      "blob-rounds": { type: "string" },
      "push-rounds": { type: "string" },
      "blob-clients": { type: "string" },
      "sync-repos": { type: "string" },
      "sync-tags": { type: "string" },
      "list-tags": { type: "string" },
      "pull-paths": { type: "string" },
      "warm-reads": { type: "string" },
      cache: { type: "string" },
      profile: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (args.help) {
    process.stdout.write(`${HELP}\n`);
    process.exit(0);
  }
  type Flag = Exclude<keyof typeof args, "help">;
  const given = (flag: Flag, env: string): string | undefined => args[flag] ?? (process.env[env] || undefined);
  const setting = (flag: Flag, env: string, fallback: string): string => given(flag, env) ?? fallback;
  function list<T extends string>(flag: Flag, env: string, allowed: readonly T[], defaults: readonly T[] = allowed): T[] {
    const items = setting(flag, env, defaults.join(","))
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    for (const item of items) if (!allowed.includes(item as T)) usage(`--${flag}: "${item}" is not one of ${allowed.join(", ")}`);
    return items as T[];
  }
  const optionalList = <T extends string>(flag: Flag, env: string, allowed: readonly T[]) =>
    given(flag, env) === undefined ? undefined : list(flag, env, allowed);
  function number(flag: Flag, env: string, fallback: number, min: number): number {
    const raw = setting(flag, env, String(fallback));
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) usage(`--${flag}: expected a number ≥ ${min} (got "${raw}")`);
    return n;
  }
  const integer = (flag: Flag, env: string, fallback: number, min: number) => Math.floor(number(flag, env, fallback, min));
  const optionalInteger = (flag: Flag, env: string, min: number) => (given(flag, env) === undefined ? undefined : integer(flag, env, 0, min));

  const settings: Settings = {
    suites: list("suite", "BENCH_SUITE", SUITES),
    databases: optionalList("db", "BENCH_DB", ["pglite", "postgres"] as const),
    protocols: optionalList("protocols", "BENCH_PROTOCOLS", ["connect", "grpc", "rest"] as const),
    calls: list("calls", "BENCH_CALLS", SCENARIO_NAMES, DEFAULT_SCENARIOS),
    durationSeconds: given("duration", "BENCH_DURATION") === undefined ? undefined : number("duration", "BENCH_DURATION", 10, 1),
    rounds: optionalInteger("rounds", "BENCH_ROUNDS", 1),
    warmupSeconds: number("warmup", "BENCH_WARMUP", 2, 0),
    timeoutSeconds: number("timeout", "BENCH_TIMEOUT", 5, 0.1),
    concurrency: integer("concurrency", "BENCH_CONCURRENCY", 32, 1),
    connections: integer("connections", "BENCH_CONNECTIONS", 4, 1),
    tagCount: optionalInteger("tags", "BENCH_TAGS", 200),
    deepPage: integer("deep-page", "BENCH_DEEP_PAGE", 90, 2),
    logLevel: setting("log-level", "BENCH_LOG_LEVEL", "info"),
    poolMax: setting("pool", "BENCH_DB_POOL_MAX", "10"),
    workers: integer("workers", "BENCH_WORKERS", 1, 1),
    client: list<ClientChoice>("client", "BENCH_CLIENT", ["auto", "node"])[0] ?? "auto",
    blobMiB: integer("blob-mib", "BENCH_BLOB_MIB", 512, 1),
    blobRounds: integer("blob-rounds", "BENCH_BLOB_ROUNDS", 5, 1),
    pushRounds: integer("push-rounds", "BENCH_PUSH_ROUNDS", 3, 1),
    blobClients: integer("blob-clients", "BENCH_BLOB_CLIENTS", 8, 1),
    syncRepos: integer("sync-repos", "BENCH_SYNC_REPOS", 1000, 1),
    syncTags: integer("sync-tags", "BENCH_SYNC_TAGS", 10, 1),
    listTags: integer("list-tags", "BENCH_LIST_TAGS", 1000, 1),
    pullPaths: list("pull-paths", "BENCH_PULL_PATHS", PULL_PATHS),
    warmReads: integer("warm-reads", "BENCH_PULL_WARM_READS", 1, 1),
    cacheDir: resolve(setting("cache", "BENCH_CACHE", join(BENCH_DIR, ".cache"))),
    profileDir: given("profile", "BENCH_PROFILE"),
    out: resolve(setting("out", "BENCH_OUT", join(BENCH_DIR, "results", "latest.md"))),
  };
  if (settings.listTags > 1000) usage("--list-tags: at most 1000 (one tags/list page on both registries)");
  return settings;
}

export function usage(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${HELP}\n`);
  process.exit(2);
}
