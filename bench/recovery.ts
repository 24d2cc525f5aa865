// npx tsx bench/recovery.ts [--rounds N]: how long the service takes to answer again after a bug
// ends a worker, and how long calls take to fail while PostgreSQL hangs. Figures for the operator
// (and the hardening issue's closing note), not targets: they depend on the machine's load.
//
// 1. The real entry point (src/main.ts, compiled, as `npm start` runs it) on the embedded PGlite
//    and on a throwaway PostgreSQL, with test/support/fault-injection.ts loaded: a request with
//    `x-fault-injection: throw` leaves an uncaught exception behind; we time from its answer to the
//    first 200 of a catalog call, polling every 20 ms.
// 2. A server on a throwaway PostgreSQL that we freeze (SIGSTOP): the time from the freeze to the
//    first UNAVAILABLE, and then how long each call takes to fail.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { packageRoot } from "../src/paths.js";
import { openPostgres } from "../src/db/database.js";
import { postgresConfig, quietLog } from "../test/support/database.js";
import { freePort, startThrowawayPostgres } from "../test/support/postgres.js";
import { startTestServer } from "../test/support/server.js";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "5" } } });
const rounds = Number(values.rounds);

const call = async (port: number, headers: Record<string, string> = {}, timeoutMs = 10_000) => {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/artifact.v1.RegistryService/ListRegistries`, {
      method: "POST",
      headers: { "content-type": "application/json", connection: "close", ...headers },
      body: "{}",
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
};

const summary = (ms: number[]) => {
  const sorted = [...ms].sort((a, b) => a - b);
  return `min ${sorted[0]!.toFixed(0)} ms, median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms (${ms.length} rounds)`;
};

/**
 * One round: a fresh service, left to settle until its spare worker is parked (as a service that
 * has been up for a while), then one uncaught exception; the time from the failing call's answer to
 * the first 200. A fresh process per round, so every round measures a first crash (later ones
 * within a minute back off on purpose).
 */
async function crashRound(env: Record<string, string>): Promise<number> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--import", join(packageRoot, "test/support/fault-injection.ts"), join(packageRoot, "dist/src/main.js")],
    {
      env: { ...process.env, ...env, HTTP_PORT: String(port), GRPC_PORT: String(await freePort()), LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "ignore"],
    },
  );
  let spareReady = false;
  child.stdout.on("data", (chunk: Buffer) => {
    if (chunk.toString().includes("a spare worker is ready")) spareReady = true;
  });
  try {
    while (!spareReady || (await call(port)) !== 200) await new Promise((r) => setTimeout(r, 100));
    await call(port, { "x-fault-injection": "throw" });
    const t0 = performance.now();
    // The worker may still answer a moment before the exception ends it: wait for it to go first.
    while ((await call(port)) === 200 && performance.now() - t0 < 200) await new Promise((r) => setTimeout(r, 5));
    while ((await call(port)) !== 200) await new Promise((r) => setTimeout(r, 20));
    return performance.now() - t0;
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
}

async function crashRecovery(label: string, env: Record<string, string>): Promise<void> {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) times.push(await crashRound(env));
  console.log(`${label}: answering again after an uncaught exception: ${summary(times)}`);
}

async function hungPostgres(): Promise<void> {
  const pg = await startThrowawayPostgres();
  const database = await openPostgres(postgresConfig(pg.url, 4), quietLog);
  const server = await startTestServer("postgres", { database, config: { healthCheckIntervalMs: 1_000, healthCheckTimeoutMs: 1_000 } });
  try {
    const detect: number[] = [];
    const failFast: number[] = [];
    for (let i = 0; i < rounds; i++) {
      pg.freeze();
      const t0 = performance.now();
      // Probes give up after 200 ms: a call that reached the hung database before health noticed
      // waits for it (or for its client's deadline), as it should; we want the first fast refusal.
      while ((await call(server.http.port, {}, 200)) !== 503) await new Promise((r) => setTimeout(r, 10));
      detect.push(performance.now() - t0);
      for (let j = 0; j < 5; j++) {
        const t = performance.now();
        await call(server.http.port);
        failFast.push(performance.now() - t);
      }
      pg.thaw();
      while ((await call(server.http.port)) !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    console.log(`PostgreSQL hung (SIGSTOP): first UNAVAILABLE after the freeze: ${summary(detect)}`);
    console.log(`PostgreSQL hung (SIGSTOP): each later call fails in: ${summary(failFast)}`);
  } finally {
    pg.thaw();
    await server.stop();
    pg.destroy();
  }
}

execFileSync(process.execPath, [join(packageRoot, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], { cwd: packageRoot });
const dataDir = mkdtempSync(join(tmpdir(), "artifact-recovery-"));
try {
  await crashRecovery("embedded PGlite, WORKERS=1", { DATA_DIR: dataDir, DATABASE_URL: "", DB_HOST: "" });
  const pg = await startThrowawayPostgres();
  try {
    await crashRecovery("PostgreSQL, WORKERS=1", { DATA_DIR: dataDir, DATABASE_URL: pg.url });
    await crashRecovery("PostgreSQL, WORKERS=2", { DATA_DIR: dataDir, DATABASE_URL: pg.url, WORKERS: "2" });
  } finally {
    pg.destroy();
  }
  await hungPostgres();
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(0);
