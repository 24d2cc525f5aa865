// npm run bench [-- --help]: for each database, start the server in its own process, seed it
// through the API, drive each call over each protocol from another process, print and save a
// markdown report. Exits 1 when any row had errors.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { backgroundBusyPct, measureCpu } from "./cpu.js";
import { DATABASE_KINDS, openTarget, type DatabaseKind, type DatabaseTarget } from "./databases.js";
import { runLoad, wrkAvailable, type ClientChoice, type Protocol } from "./load/index.js";
import { summarizeProfile } from "./profile.js";
import { failed, renderReport, renderSection, toRow, type Row, type Run, type RunInfo, type Section } from "./report.js";
import { buildScenarios, encodeRequests, SCENARIO_NAMES, DEFAULT_SCENARIOS, verify, type Scenario, type ScenarioName } from "./scenarios.js";
import { seedTags } from "./seed.js";
import { startBenchServer, type BenchServer } from "./server-process.js";

const HELP = `usage: npm run bench -- [options]   (each option also as the environment variable shown)
  --db LIST            pglite,postgres                 BENCH_DB
  --protocols LIST     connect,grpc                    BENCH_PROTOCOLS
  --calls LIST         ceiling,GetTag,ListTags         BENCH_CALLS
                       (+ diagnostics: GetTag's query run other ways, see bench/diagnostics.ts)
  --duration S         measured seconds per row (10)   BENCH_DURATION
  --rounds N           run every row N times, report the median (1)  BENCH_ROUNDS
  --warmup S           warm-up seconds per row (2)     BENCH_WARMUP
  --timeout S          a slower call is an error (5)   BENCH_TIMEOUT
  --concurrency N      calls in flight (32)            BENCH_CONCURRENCY
  --connections N      HTTP/2 sessions for gRPC (4)    BENCH_CONNECTIONS
  --tags N             tags seeded (10000)             BENCH_TAGS
  --deep-page N        the deep ListTags page (90)     BENCH_DEEP_PAGE
  --log-level L        server LOG_LEVEL (info)         BENCH_LOG_LEVEL
  --pool N             server DB_POOL_MAX (10)         BENCH_DB_POOL_MAX
  --client C           auto (wrk for Connect when installed) | node   BENCH_CLIENT
  --profile DIR        write a server CPU profile per row into DIR    BENCH_PROFILE
  --out FILE           report file (bench/results/latest.md)          BENCH_OUT
PostgreSQL: BENCH_DATABASE_URL, or a throwaway cluster (Debian's postgresql).`;

const { values: args } = parseArgs({
  options: {
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
    client: { type: "string" },
    profile: { type: "string" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (args.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}

const setting = (flag: keyof typeof args, env: string, fallback: string): string =>
  (args[flag] as string | undefined) ?? process.env[env] ?? fallback;
function list<T extends string>(flag: keyof typeof args, env: string, allowed: readonly T[], defaults: readonly T[] = allowed): T[] {
  const items = setting(flag, env, defaults.join(",")).split(",").map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!allowed.includes(item as T)) usage(`--${flag}: "${item}" is not one of ${allowed.join(", ")}`);
  return items as T[];
}
function number(flag: keyof typeof args, env: string, fallback: number, min: number): number {
  const raw = setting(flag, env, String(fallback));
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) usage(`--${flag}: expected a number ≥ ${min} (got "${raw}")`);
  return n;
}
function usage(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${HELP}\n`);
  process.exit(2);
}

const databases = list<DatabaseKind>("db", "BENCH_DB", DATABASE_KINDS);
const protocols = list<Exclude<Protocol, "http">>("protocols", "BENCH_PROTOCOLS", ["connect", "grpc"]);
const calls = list<ScenarioName>("calls", "BENCH_CALLS", SCENARIO_NAMES, DEFAULT_SCENARIOS);
const durationSeconds = number("duration", "BENCH_DURATION", 10, 1);
const rounds = Math.floor(number("rounds", "BENCH_ROUNDS", 1, 1));
const warmupSeconds = number("warmup", "BENCH_WARMUP", 2, 0);
const timeoutSeconds = number("timeout", "BENCH_TIMEOUT", 5, 0.1);
const concurrency = Math.floor(number("concurrency", "BENCH_CONCURRENCY", 32, 1));
const connections = Math.floor(number("connections", "BENCH_CONNECTIONS", 4, 1));
const tagCount = Math.floor(number("tags", "BENCH_TAGS", 10_000, 200));
const deepPage = Math.floor(number("deep-page", "BENCH_DEEP_PAGE", 90, 2));
const logLevel = setting("log-level", "BENCH_LOG_LEVEL", "info");
const poolMax = setting("pool", "BENCH_DB_POOL_MAX", "10");
const client = list<ClientChoice>("client", "BENCH_CLIENT", ["auto", "node"])[0] ?? "auto";
const profileDir = (args.profile as string | undefined) ?? process.env.BENCH_PROFILE;
const out = resolve(setting("out", "BENCH_OUT", join(dirname(new URL(import.meta.url).pathname), "results", "latest.md")));
if (deepPage * 100 > tagCount) usage(`--deep-page ${deepPage} needs at least ${deepPage * 100} tags (--tags ${tagCount})`);
const TARGET_RATIO = 0.4;

// Whatever happens, stop what we started: by its owner when done, or by the handler on a signal
// (stops are idempotent, so both may run).
const running = new Set<() => Promise<void> | void>();
async function using<T, R>(start: () => Promise<T>, stop: (r: T) => Promise<void> | void, body: (r: T) => Promise<R>): Promise<R> {
  const resource = await start();
  const stopIt = () => stop(resource);
  running.add(stopIt);
  try {
    return await body(resource);
  } finally {
    running.delete(stopIt);
    await stopIt();
  }
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    // Newest first: the server before its database, the database before the work dir.
    void (async () => {
      for (const stop of [...running].reverse()) await Promise.resolve().then(stop).catch(() => {});
      process.exit(130);
    })();
  });
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

const say = (line: string) => process.stderr.write(`bench: ${line}\n`);
const clientFor = (p: Protocol) => (p === "connect" && client === "auto" && wrkAvailable() ? "wrk" : "node");

async function benchDatabase(kind: DatabaseKind, workDir: string, info: RunInfo): Promise<Section> {
  say(`${kind}: starting database and server`);
  return using(
    () => openTarget(kind, workDir),
    (target) => target.close(),
    async (target) => {
      const env = { ...target.env, LOG_LEVEL: logLevel, DB_POOL_MAX: poolMax, SECRET_KEY: "00".repeat(32) };
      const logFile = join(workDir, `server-${kind}.log`);
      const rows = await using(
        () => startBenchServer({ env, logFile }),
        (server) => server.stop(),
        (server) =>
          benchServer(kind, server, target, workDir).catch((err: unknown) => {
            say(`${kind}: failed; the server's last log lines:\n${tail(logFile, 15)}`);
            throw err;
          }),
      );
      const section: Section = {
        title: kind === "pglite" ? "PGlite" : "PostgreSQL",
        notes: [target.description, rows.seedNote],
        rows: rows.rows,
        targetApplies: kind === "postgres",
      };
      process.stdout.write(`\n${renderSection(section, info)}\n\n`);
      return section;
    },
  );
}

async function benchServer(kind: DatabaseKind, server: BenchServer, target: DatabaseTarget, workDir: string): Promise<{ rows: Row[]; seedNote: string }> {
  say(`${kind}: seeding ${tagCount} tags through the API`);
  const seed = await seedTags(server.grpcUrl, tagCount, [deepPage]);
  say(`${kind}: seeded in ${seed.seconds.toFixed(1)} s`);
  const scenarios = buildScenarios(seed, calls, deepPage);

  // Rounds run every row in turn, so drift in the machine's other load hits ceiling and calls alike.
  const samples = new Map<string, { protocol: Protocol; scenario: Scenario; runs: Run[] }>();
  for (let round = 1; round <= rounds; round++) {
    for (const protocol of protocols) {
      const baseUrl = protocol === "grpc" ? server.grpcUrl : server.httpUrl;
      for (const scenario of scenarios) {
        if (round === 1) await verify(scenario, protocol, baseUrl);
        const plan = {
          protocol,
          baseUrl,
          method: "POST",
          requests: encodeRequests(scenario, protocol),
          concurrency,
          connections,
          timeoutSeconds,
          warmupSeconds,
          durationSeconds,
        };
        const background = await backgroundBusyPct();
        say(`${kind}: ${protocol} ${scenario.name}${rounds > 1 ? ` round ${round}/${rounds}` : ""} (${warmupSeconds}+${durationSeconds} s, ${clientFor(protocol)}; machine ${background.toFixed(0)}% busy before)`);
        const load = () => measureCpu(server.pid, target.postmasterPid, () => runLoad(plan, workDir, client));
        let profileFile: string | undefined;
        if (profileDir) {
          mkdirSync(profileDir, { recursive: true });
          const slug = `${kind}-${protocol}-${scenario.name}-r${round}`.toLowerCase().replace(/[^a-z0-9]+/g, "-");
          profileFile = join(resolve(profileDir), `${slug}.cpuprofile`);
        }
        const { value: result, cpu } = profileFile ? await server.profile(profileFile, load) : await load();
        const key = `${protocol} ${scenario.name}`;
        if (!samples.has(key)) samples.set(key, { protocol, scenario, runs: [] });
        samples.get(key)!.runs.push({ result, cpu, background });
        say(
          `  → ${failed(result) ? "FAILED" : `${result.rps.toFixed(0)} req/s`}, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, errors ${result.errors}, server CPU ${cpu.serverPct.toFixed(0)}%`,
        );
        if (profileFile) say(`  profile ${profileFile}\n${summarizeProfile(profileFile, 12)}`);
      }
    }
  }
  const rows = [...samples.values()].map(({ protocol, scenario, runs }) => toRow(protocol, scenario.name, runs));
  return { rows, seedNote: `${tagCount} tags in one repository, seeded through the API in ${seed.seconds.toFixed(1)} s; GetTag picks one of them at random per call` };
}

async function main(): Promise<number> {
  const info: RunInfo = {
    targetRatio: TARGET_RATIO,
    settings: [
      `${warmupSeconds} s warm-up + ${durationSeconds} s measured per row${rounds > 1 ? `, ${rounds} rounds (rows in turn; the round with the median req/s is shown, errors of all rounds count)` : ""}, ${concurrency} calls in flight (closed loop), a call slower than ${timeoutSeconds} s is an error; gRPC over ${connections} HTTP/2 connections, Connect over ${concurrency} HTTP/1.1 keep-alive connections`,
      `clients: Connect JSON by ${clientFor("connect") === "wrk" ? "wrk (C)" : "the Node worker"}, gRPC by the Node http2 worker (bench/load/node-worker.ts), each in its own process`,
      `server: bench/server.ts (startServer + the bench-only ceiling and diagnostic routes), LOG_LEVEL=${logLevel} (log to a file), DB_POOL_MAX=${poolMax}`,
    ],
  };
  const sections = await using(
    async () => mkdtempSync(join(tmpdir(), "artifact-bench-")),
    (workDir) => rmSync(workDir, { recursive: true, force: true }),
    async (workDir) => {
      const done: Section[] = [];
      for (const kind of databases) done.push(await benchDatabase(kind, workDir, info));
      return done;
    },
  );
  const report = renderReport(sections, info);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, report);
  say(`report written to ${out}`);
  return sections.some((s) => s.rows.some((r) => failed(r.result))) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
