// The unary-call harness (issue 2, reused by issue 3): one database, one server in its own
// process, tags seeded through the API, then each call over each protocol from another process.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { backgroundBusyPct, measureCpu } from "../cpu.js";
import { openTarget, type DatabaseKind, type DatabaseTarget } from "../databases.js";
import { say, tail, using } from "../lifecycle.js";
import { runLoad, wrkAvailable, type ClientChoice, type LoadPlan, type Protocol } from "../load/index.js";
import { summarizeProfile } from "../profile.js";
import { failed, toRow, type Row, type Run } from "../report.js";
import { buildScenarios, encodeRequests, httpMethodOf, verify, type Scenario, type ScenarioName } from "../scenarios.js";
import { seedTags } from "../seed.js";
import { startBenchServer, type BenchServer } from "../server-process.js";
import type { Settings } from "../settings.js";

export interface ApiOptions {
  protocols: Protocol[];
  calls: ScenarioName[];
  durationSeconds: number;
  rounds: number;
  warmupSeconds: number;
  timeoutSeconds: number;
  concurrency: number;
  connections: number;
  tagCount: number;
  deepPage: number;
  logLevel: string;
  poolMax: string;
  client: ClientChoice;
  profileDir?: string;
  /** Prefix of profile file names. */
  suite: string;
}

/** ApiOptions from the command line, with a suite's own defaults where an option was not given. */
export function apiOptions(s: Settings, suite: { suite: string; protocols: Protocol[]; calls: ScenarioName[]; rounds: number; tagCount: number }): ApiOptions {
  return {
    protocols: s.protocols ?? suite.protocols,
    calls: suite.calls,
    durationSeconds: s.durationSeconds ?? 10,
    rounds: s.rounds ?? suite.rounds,
    warmupSeconds: s.warmupSeconds,
    timeoutSeconds: s.timeoutSeconds,
    concurrency: s.concurrency,
    connections: s.connections,
    tagCount: s.tagCount ?? suite.tagCount,
    deepPage: s.deepPage,
    logLevel: s.logLevel,
    poolMax: s.poolMax,
    client: s.client,
    profileDir: s.profileDir,
    suite: suite.suite,
  };
}

export interface ApiMeasurement {
  rows: Row[];
  /** What was measured against: the database, the seed. */
  notes: string[];
}

/** The client that runs a protocol's load: wrk (C) for HTTP/1.1 when installed, else the Node worker. */
export const clientFor = (p: Protocol, client: ClientChoice) => (p !== "grpc" && client === "auto" && wrkAvailable() ? "wrk" : "node");

export function measureApi(kind: DatabaseKind, workDir: string, o: ApiOptions): Promise<ApiMeasurement> {
  say(`${o.suite}: ${kind}: starting database and server`);
  return using(
    () => openTarget(kind, workDir),
    (target) => target.close(),
    async (target) => {
      const env = { ...target.env, LOG_LEVEL: o.logLevel, DB_POOL_MAX: o.poolMax, SECRET_KEY: "00".repeat(32) };
      const logFile = join(workDir, `server-${o.suite}-${kind}.log`);
      const measured = await using(
        () => startBenchServer({ env, logFile }),
        (server) => server.stop(),
        (server) =>
          measureServer(kind, server, target, workDir, o).catch((err: unknown) => {
            say(`${o.suite}: ${kind}: failed; the server's last log lines:\n${tail(logFile, 15)}`);
            throw err;
          }),
      );
      return { rows: measured.rows, notes: [target.description, measured.seedNote] };
    },
  );
}

async function measureServer(
  kind: DatabaseKind,
  server: BenchServer,
  target: DatabaseTarget,
  workDir: string,
  o: ApiOptions,
): Promise<{ rows: Row[]; seedNote: string }> {
  say(`${o.suite}: ${kind}: seeding ${o.tagCount} tags through the API`);
  const seed = await seedTags(server.grpcUrl, o.tagCount, [o.calls.includes("ListTags") ? o.deepPage : 1]);
  say(`${o.suite}: ${kind}: seeded in ${seed.seconds.toFixed(1)} s`);
  const scenarios = buildScenarios(seed, o.calls, o.deepPage);

  // Rounds run every row in turn, so drift in the machine's other load hits every row alike.
  const samples = new Map<string, { protocol: Protocol; scenario: Scenario; runs: Run[] }>();
  for (let round = 1; round <= o.rounds; round++) {
    for (const protocol of o.protocols) {
      const baseUrl = protocol === "grpc" ? server.grpcUrl : server.httpUrl;
      for (const scenario of scenarios) {
        if (protocol === "rest" && !scenario.restPath) continue;
        if (round === 1) await verify(scenario, protocol, baseUrl);
        const plan: LoadPlan = {
          protocol,
          baseUrl,
          method: httpMethodOf(protocol),
          requests: encodeRequests(scenario, protocol),
          concurrency: o.concurrency,
          connections: o.connections,
          timeoutSeconds: o.timeoutSeconds,
          warmupSeconds: o.warmupSeconds,
          durationSeconds: o.durationSeconds,
        };
        const background = await backgroundBusyPct();
        say(
          `${o.suite}: ${kind}: ${protocol} ${scenario.name}${o.rounds > 1 ? ` round ${round}/${o.rounds}` : ""} (${o.warmupSeconds}+${o.durationSeconds} s, ${clientFor(protocol, o.client)}; machine ${background.toFixed(0)}% busy before)`,
        );
        const load = () => measureCpu(server.pid, target.postmasterPid, () => runLoad(plan, workDir, o.client));
        let profileFile: string | undefined;
        if (o.profileDir) {
          mkdirSync(o.profileDir, { recursive: true });
          const slug = `${o.suite}-${kind}-${protocol}-${scenario.name}-r${round}`.toLowerCase().replace(/[^a-z0-9]+/g, "-");
          profileFile = join(resolve(o.profileDir), `${slug}.cpuprofile`);
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
  return {
    rows,
    seedNote: `${o.tagCount} tags in one repository, seeded through the API in ${seed.seconds.toFixed(1)} s; GetTag picks one of them at random per call`,
  };
}
