// A throwaway PostgreSQL cluster: initdb into a temp dir, trust auth, a free loopback port.
// Used by tests that must stop and restart "their" database, and as a CLI by .ci/run:
//   tsx test/support/postgres.ts start   → prints `export TEST_DATABASE_URL=…` and `export PGDATA_DIR=…` (for eval)
//   tsx test/support/postgres.ts stop <dir>
import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ThrowawayPostgres {
  url: string;
  dir: string;
  port: number;
  /** Stops the server (fast shutdown): clients see the database go away. */
  stop(): void;
  /** Starts it again on the same port and data. */
  start(): void;
  /**
   * SIGSTOP to the server and every backend: a database that is there (connections open, the
   * port accepts) but answers nothing, as a hung host or a network partition looks to a client.
   */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** Stops it and removes its files. */
  destroy(): void;
}

/** Debian keeps the server binaries outside PATH. */
export function findPostgresBin(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (existsSync(root)) {
    const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (existsSync(join(root, v, "bin", "initdb"))) return join(root, v, "bin");
  }
  try {
    const initdb = execFileSync("sh", ["-c", "command -v initdb"], { encoding: "utf8" }).trim();
    return initdb ? initdb.replace(/\/initdb$/, "") : undefined;
  } catch {
    return undefined;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** `parent`: the directory to make the cluster's directory in (default: the system's temp dir). */
export async function startThrowawayPostgres(where: { parent?: string } = {}): Promise<ThrowawayPostgres> {
  const bin = findPostgresBin();
  if (!bin) throw new Error("PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql");
  // initdb refuses to run as root: run the cluster as the postgres system user then.
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) =>
    asRoot
      ? execFileSync("runuser", ["-u", "postgres", "--", join(bin, cmd), ...args], { stdio: "pipe" })
      : execFileSync(join(bin, cmd), args, { stdio: "pipe" });

  const dir = mkdtempSync(join(where.parent ?? tmpdir(), "artifact-pg-"));
  if (asRoot) chownSync(dir, Number(execFileSync("id", ["-u", "postgres"]).toString()), Number(execFileSync("id", ["-g", "postgres"]).toString()));
  const data = join(dir, "data");
  const port = await freePort();
  run("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "-N"]);
  const options = `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c fsync=off -c max_connections=200`;
  const start = () => run("pg_ctl", ["-D", data, "-l", join(dir, "log"), "-o", options, "-w", "start"]);
  const stop = () => {
    try {
      run("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]);
    } catch {
      // already stopped
    }
  };
  start();
  const processes = () => {
    const postmaster = readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]!;
    const children = spawnSync("pgrep", ["-P", postmaster]).stdout.toString().split("\n").filter(Boolean);
    return [postmaster, ...children].map(Number);
  };
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dir,
    port,
    stop,
    start,
    freeze() {
      for (const pid of processes()) process.kill(pid, "SIGSTOP");
    },
    thaw() {
      for (const pid of processes()) process.kill(pid, "SIGCONT");
    },
    destroy() {
      try {
        for (const pid of processes()) process.kill(pid, "SIGCONT");
      } catch {
        // not running
      }
      stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function cli(): Promise<void> {
  const [command, dir] = process.argv.slice(2);
  if (command === "start") {
    const pg = await startThrowawayPostgres();
    // Shell assignments for `eval "$(… start)"`: exported, so `npm test` (a child process) sees them.
    process.stdout.write(`export TEST_DATABASE_URL='${pg.url}'\nexport PGDATA_DIR='${pg.dir}'\n`);
  } else if (command === "stop" && dir) {
    const bin = findPostgresBin();
    const args = ["-D", join(dir, "data"), "-m", "fast", "-w", "stop"];
    try {
      if (process.getuid?.() === 0) execFileSync("runuser", ["-u", "postgres", "--", join(bin!, "pg_ctl"), ...args], { stdio: "inherit" });
      else execFileSync(join(bin!, "pg_ctl"), args, { stdio: "inherit" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } else {
    process.stderr.write("usage: postgres.ts start | stop <dir>\n");
    process.exit(2);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await cli();
