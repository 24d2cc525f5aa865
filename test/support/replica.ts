// Replicas of the service as an operator runs them on separate machines: separate processes
// (`node --import tsx src/main.ts`, the real entry point; not WORKERS, not in-process), each with
// its own HTTP and gRPC ports and its own DATA_DIR (nothing shared on disk), all on one PostgreSQL
// database and one S3 bucket (CONTENT_STORE=s3), with the same SECRET_KEY and ADMIN_TOKEN,
// GC_INTERVAL_MS=0 (collections only when a test asks) and LOG_FORMAT=json.
//
// Each replica starts in a process group of its own (its primary and the workers it forks), so
// kill() can SIGKILL the whole replica at once, as a machine that loses power, and start() can
// bring it back on the same ports (a balancer in front keeps pointing at them). A watchdog
// (reaper.ts) kills every group and removes the DATA_DIRs if the test process dies however it
// dies; stop() ends them all gracefully. The child's cwd is its DATA_DIR, so no `.env` of the
// checkout is read: the replicas get exactly the settings given here.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { packageRoot } from "../../src/paths.js";
import { ADMIN_TOKEN } from "./credentials.js";
import { freePort } from "./postgres.js";
import { killGroups, reapGroupsWhenProcessEnds, type GroupReaper } from "./reaper.js";
import type { S3Target } from "./swift.js";

/** What a replica's log line says (LOG_FORMAT=json). */
export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export interface ReplicaSettings {
  /** DATABASE_URL of every replica (PostgreSQL: replicas cannot share an embedded PGlite). */
  databaseUrl: string;
  /** The bucket every replica stores content in. */
  s3: S3Target & { bucket: string };
  /** More settings for every replica (e.g. S3_PART_SIZE_MB), or overrides of the ones above. */
  env?: Record<string, string>;
  /** Modules preloaded into each replica's processes with `node --import` (test hooks). */
  imports?: string[];
  /** How long a start may take before it fails (default 90 s). */
  startTimeoutMs?: number;
}

export interface Replica {
  /** "A", "B", "C"… */
  readonly name: string;
  /** The HTTP port (every protocol); the same after a restart. */
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly dataDir: string;
  /** The primary's pid (the process group's id) while it runs. */
  pid(): number | undefined;
  running(): boolean;
  /** Every parsed log line of every start of this replica, in order. */
  log(): LogLine[];
  /** The raw output (stdout and stderr) of the current or last start, for a failing test. */
  output(): string;
  /** Starts it (again) and resolves once it listens and GET /readyz answers 200. */
  start(): Promise<void>;
  /** SIGKILL to the whole replica (primary and workers at once); resolves once it is gone. */
  kill(): Promise<void>;
  /** SIGTERM (a graceful stop), SIGKILL after 10 s; resolves once it is gone. */
  stop(): Promise<void>;
}

export interface ReplicaSet {
  replicas: Replica[];
  /** The settings every replica was started with (without the secrets' values in a message). */
  env: Record<string, string>;
  /** Stops every replica and removes their DATA_DIRs. Idempotent. */
  stop(): Promise<void>;
}

const READY_LINE = /"msg":"listening/;

/** The tsx loader, by absolute URL: the replicas run with their DATA_DIR as cwd. */
function tsxLoader(): string {
  return pathToFileURL(createRequire(join(packageRoot, "package.json")).resolve("tsx")).href;
}

class ReplicaProcess implements Replica {
  readonly url: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private lines: LogLine[] = [];
  private raw = "";

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly grpcPort: number,
    readonly dataDir: string,
    private readonly env: Record<string, string>,
    private readonly imports: string[],
    private readonly reaper: GroupReaper,
    private readonly startTimeoutMs: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  pid(): number | undefined {
    return this.running() ? this.child?.pid : undefined;
  }

  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  log(): LogLine[] {
    return this.lines;
  }

  output(): string {
    return this.raw.slice(-20_000);
  }

  async start(): Promise<void> {
    if (this.running()) throw new Error(`replica ${this.name} is running already`);
    this.raw = "";
    const args = ["--import", tsxLoader(), ...this.imports.flatMap((i) => ["--import", i]), join(packageRoot, "src/main.ts")];
    const env = { ...this.env, DATA_DIR: this.dataDir, HTTP_PORT: String(this.port), GRPC_PORT: String(this.grpcPort) };
    // detached: the primary leads a process group of its own, which the workers it forks join.
    const child = spawn(process.execPath, args, { cwd: this.dataDir, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    if (child.pid !== undefined) this.reaper.track(child.pid);
    this.exited = new Promise((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", () => resolve());
    });
    let partial = "";
    let ready = false;
    child.stdout.on("data", (d: Buffer) => {
      const text = partial + d.toString("utf8");
      this.raw = (this.raw + d.toString("utf8")).slice(-100_000);
      const cut = text.lastIndexOf("\n");
      partial = text.slice(cut + 1);
      for (const line of text.slice(0, cut + 1).split("\n")) {
        if (!line) continue;
        if (READY_LINE.test(line)) ready = true;
        try {
          this.lines.push({ ...(JSON.parse(line) as LogLine), replica: this.name });
        } catch {
          // not a JSON line (a Node warning on stdout): in output() only
        }
      }
    });
    child.stderr.on("data", (d: Buffer) => (this.raw = (this.raw + d.toString("utf8")).slice(-100_000)));

    const deadline = Date.now() + this.startTimeoutMs;
    while (!ready) {
      if (!this.running()) throw new Error(`replica ${this.name} exited during start-up:\n${this.output()}`);
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`replica ${this.name} did not listen within ${this.startTimeoutMs} ms:\n${this.output()}`);
      }
      await sleep(50);
    }
    while ((await probe(`${this.url}/readyz`)) !== 200) {
      if (!this.running() || Date.now() > deadline) {
        await this.kill();
        throw new Error(`replica ${this.name} never answered GET /readyz with 200:\n${this.output()}`);
      }
      await sleep(50);
    }
  }

  async kill(): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined || !this.running()) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // gone already
    }
    await this.exited;
    // The workers die with the group; wait until none is left.
    await killGroups([pid], 0);
  }

  async stop(): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined || !this.running()) return;
    // As an orchestrator stops a replica: SIGTERM to the primary, which stops its workers
    // gracefully (in-flight requests finish first); whatever is left after 10 s is killed.
    process.kill(pid, "SIGTERM");
    await Promise.race([this.exited, sleep(10_000)]);
    await killGroups([pid], 0);
    await this.exited;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function probe(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** Starts `count` replicas (in parallel) and resolves once every one is ready. */
export async function startReplicas(count: number, settings: ReplicaSettings): Promise<ReplicaSet> {
  const root = mkdtempSync(join(tmpdir(), "artifact-replicas-"));
  const reaper = reapGroupsWhenProcessEnds(root);
  const env: Record<string, string> = {
    // Only what a process needs from ours; no setting of the service leaks in from the test's environment.
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    LANG: "C.UTF-8",
    TMPDIR: tmpdir(),
    // tsx compiles with the project's settings although cwd is the DATA_DIR.
    TSX_TSCONFIG_PATH: join(packageRoot, "tsconfig.json"),
    DATABASE_URL: settings.databaseUrl,
    HTTP_HOST: "127.0.0.1",
    GRPC_HOST: "127.0.0.1",
    WORKERS: "1",
    SECRET_KEY: randomBytes(32).toString("hex"),
    ADMIN_TOKEN,
    CONTENT_STORE: "s3",
    S3_BUCKET: settings.s3.bucket,
    S3_ENDPOINT: settings.s3.endpoint,
    S3_REGION: settings.s3.region,
    S3_ACCESS_KEY_ID: settings.s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: settings.s3.secretAccessKey,
    GC_INTERVAL_MS: "0",
    LOG_FORMAT: "json",
    LOG_LEVEL: "info",
    ...settings.env,
  };
  const ports = await distinctFreePorts(count * 2);
  const replicas = Array.from({ length: count }, (_, i) => {
    const dataDir = join(root, `replica-${i}`);
    mkdirSync(dataDir);
    return new ReplicaProcess(
      String.fromCharCode(65 + i),
      ports[2 * i]!,
      ports[2 * i + 1]!,
      dataDir,
      env,
      settings.imports ?? [],
      reaper,
      settings.startTimeoutMs ?? 90_000,
    );
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(replicas.map((r) => r.stop()));
    reaper.release();
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await Promise.all(replicas.map((r) => r.start()));
  } catch (err) {
    await stop();
    throw err;
  }
  return { replicas, env, stop };
}
