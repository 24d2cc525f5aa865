// Replicas of the service as on separate machines (issue 12): N bench server processes
// (server-process.ts), each on ports of its own, on one database, behind Debian's nginx as a
// round-robin balancer (test/support/balancer.ts: nothing sticky, bodies streamed both ways).
// Whatever else they share comes from `env`: a content store (one DATA_DIR on this machine, or a
// bucket), and the same SECRET_KEY, as replicas of one deployment must.
import { join } from "node:path";
import { startBalancer, type Balancer } from "../test/support/balancer.js";
import { say, tail } from "./lifecycle.js";
import { startBenchServer, type BenchServer } from "./server-process.js";

export interface ReplicaSet {
  label: string;
  replicas: BenchServer[];
  balancer: Balancer;
  /** nginx: http://127.0.0.1:<port> */
  url: string;
  /** nginx's host:port, for docker:// references. */
  host: string;
  logFiles: string[];
  /** The last lines of every replica's log, for a failure's message. */
  output(lines?: number): string;
  /** Stops nginx, then the replicas. Idempotent. */
  stop(): Promise<void>;
}

export interface ReplicaSetOptions {
  label: string;
  count: number;
  /** Replica `i`'s environment (database, content store…) over the bench defaults below. */
  env: (i: number) => Record<string, string>;
  /** Server log level and pool size (the bench's --log-level and --pool). */
  logLevel: string;
  poolMax: string;
  /** Logs go to `${workDir}/server-${slug}-<n>.log`. */
  workDir: string;
  slug: string;
}

export async function startReplicaSet(o: ReplicaSetOptions): Promise<ReplicaSet> {
  const replicas: BenchServer[] = [];
  const logFiles: string[] = [];
  let balancer: Balancer | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await balancer?.stop();
    await Promise.all(replicas.map((r) => r.stop()));
  };
  const output = (lines = 10) => logFiles.map((f) => `--- ${f}:\n${tail(f, lines)}`).join("\n");
  try {
    // One after another: the first applies the migrations, the others find them applied.
    for (let i = 0; i < o.count; i++) {
      const logFile = join(o.workDir, `server-${o.slug}-${i + 1}.log`);
      logFiles.push(logFile);
      const env = { LOG_LEVEL: o.logLevel, DB_POOL_MAX: o.poolMax, SECRET_KEY: "00".repeat(32), WORKERS: "1", ...o.env(i) };
      replicas.push(await startBenchServer({ env, logFile }));
    }
    balancer = await startBalancer(replicas.map((r) => Number(new URL(r.httpUrl).port)));
    say(`${o.slug}: ${o.count} replicas (${replicas.map((r) => new URL(r.httpUrl).port).join(", ")}) behind nginx at ${balancer.host}`);
    return { label: o.label, replicas, balancer, url: balancer.url, host: balancer.host, logFiles, output, stop };
  } catch (err) {
    say(`${o.slug}: the replicas did not start:\n${output()}`);
    await stop();
    throw err;
  }
}
