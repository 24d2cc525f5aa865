// A throwaway S3-compatible object store: OpenStack Swift (Debian's packages) with its s3api
// middleware, one node on 127.0.0.1, in a temp dir: three rings built with swift-ring-builder,
// the account, container and object servers, a proxy with s3api + tempauth, and a memcached of its
// own, all on free loopback ports. Clients talk S3 to the proxy: SigV4, path-style addressing,
// region "us-east-1", access key "test:tester", secret "testing".
//
// Every process starts in a process group of its own (Swift's servers fork their workers into it);
// stop() ends each whole group. A small sh watchdog whose stdin is a pipe from this process kills
// the groups and removes the dir when the pipe closes, so nothing outlives a test process that dies
// in any way (even SIGKILL).
//
// As a CLI, for benches and manual runs (the servers outlive the CLI; stop them with `stop`):
//   tsx test/support/swift.ts start         → prints `export S3_TEST_ENDPOINT=…` … lines (for eval)
//   tsx test/support/swift.ts stop <dir>    → the dir is $SWIFT_TEST_DIR from `start`
// Tests can use such a running Swift instead of starting their own: see s3TestServer().
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CreateBucketCommand, ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";
import { havePeers, missingPeers, peerBin, type Peer } from "./peers.js";
import { freePort } from "./postgres.js";
import { killGroups, reapGroupsWhenProcessEnds } from "./reaper.js";

const run = promisify(execFile);

/** Debian's python3, which python3-swift is installed into (another python3 on PATH may lack it). */
const PYTHON = "/usr/bin/python3";

const SWIFT_PEERS: Peer[] = ["swift-ring-builder", "swift-proxy-server", "swift-object-server", "swift-account-server", "swift-container-server", "memcached"];

/** The Debian packages a throwaway Swift needs that this machine lacks (empty when all are there). */
export function missingSwiftPackages(): string[] {
  return missingPeers(...SWIFT_PEERS);
}

/** True when Swift can run here; otherwise warns loudly, naming the missing packages (skip the suite). */
export function haveSwift(suite: string): boolean {
  return havePeers(suite, ...SWIFT_PEERS);
}

/** What an S3 client needs. */
export interface S3Target {
  /** http://127.0.0.1:<proxy port> */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface ThrowawaySwift extends S3Target {
  /** The temp dir with configs, rings, data and logs (removed by stop()). */
  dir: string;
  ports: { proxy: number; account: number; container: number; object: number; memcached: number };
  /** A client for this store: path-style, checksums only when an operation requires them. */
  client(): S3Client;
  /** Creates a bucket with a fresh name (`prefix` + random; 3–63 chars, lower case) and returns its name. */
  createBucket(prefix?: string): Promise<string>;
  /** The last lines of every server's log (for diagnosing a failing test). */
  output(): string;
  /** The process groups started (memcached's and each server's with its workers); empty after stop(). */
  processGroups(): number[];
  /** Stops every process (SIGTERM to each process group, SIGKILL after 5 s) and removes the dir. Idempotent. */
  stop(): Promise<void>;
}

export interface SwiftOptions {
  /** The directory to make the temp dir in (default: the system's temp dir). */
  parent?: string;
  /**
   * How long to wait for S3 to answer (default 150 s: the servers need 5-25 s on 2 busy cores;
   * under vitest's 180 s hook timeout, so a hung start fails with the servers' logs).
   */
  startTimeoutMs?: number;
  /** Worker processes of the proxy (default 1); the backend servers have one each. */
  proxyWorkers?: number;
  /** Swift's log level (default "WARNING"); see output(). */
  logLevel?: "DEBUG" | "INFO" | "WARNING" | "ERROR";
  /**
   * Keep the servers running when this process ends (no watchdog, no exit hook): the CLI's `start`.
   * Stop them with stopSwiftDir(dir).
   */
  detach?: boolean;
}

export const SWIFT_REGION = "us-east-1";
const ACCESS_KEY_ID = "test:tester";
const SECRET_ACCESS_KEY = "testing";

/** An S3 client for any S3Target: path-style, no default CRC32 checksums (see the s3 notes). */
export function s3Client(target: S3Target): S3Client {
  return new S3Client({
    endpoint: target.endpoint,
    region: target.region,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    forcePathStyle: true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

/** A fresh bucket name: `prefix` + 12 random hex digits. */
export function bucketName(prefix = "t-"): string {
  const name = `${prefix}${randomBytes(6).toString("hex")}`;
  if (!/^[a-z0-9][a-z0-9.-]{2,62}$/.test(name)) throw new Error(`not a valid bucket name: ${name}`);
  return name;
}

export async function createBucket(target: S3Target, prefix?: string): Promise<string> {
  const client = s3Client(target);
  try {
    const name = bucketName(prefix);
    await client.send(new CreateBucketCommand({ Bucket: name }));
    return name;
  } finally {
    client.destroy();
  }
}

const SERVERS = ["account", "container", "object", "proxy"] as const;
type Server = (typeof SERVERS)[number];

function swiftConf(): string {
  // The hash prefix/suffix only need to stay the same for the life of this store.
  return `[swift-hash]
swift_hash_path_suffix = ${randomBytes(8).toString("hex")}
swift_hash_path_prefix = ${randomBytes(8).toString("hex")}

[storage-policy:0]
name = Policy-0
default = yes
`;
}

function commonDefaults(o: { dir: string; port: number; workers: number; logLevel: string }): string {
  // bind_timeout: a port taken between freePort() and the bind fails in 5 s (default 30), and the
  // start is retried on new ports. fallocate_reserve 0: no refusal when the temp disk is nearly full.
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${o.port}
bind_timeout = 5
workers = ${o.workers}
user = ${userInfo().username}
swift_dir = ${o.dir}
devices = ${join(o.dir, "devices")}
mount_check = false
disable_fallocate = true
fallocate_reserve = 0
log_level = ${o.logLevel}
`;
}

function backendConf(server: Exclude<Server, "proxy">, o: { dir: string; port: number; logLevel: string }): string {
  return `${commonDefaults({ ...o, workers: 1 })}
[pipeline:main]
pipeline = healthcheck ${server}-server

[app:${server}-server]
use = egg:swift#${server}

[filter:healthcheck]
use = egg:swift#healthcheck
`;
}

function proxyConf(o: { dir: string; port: number; workers: number; logLevel: string; memcachedPort: number }): string {
  // Timeouts far above Swift's defaults (conn 0.5 s, node 10 s) and no error suppression: on two busy
  // cores a slow backend must not turn into 503s, nor its only node be shunned for a minute.
  // max_upload_part_num / max_manifest_segments: AWS's 10,000 parts (s3api's default is 1,000).
  return `${commonDefaults(o)}
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
conn_timeout = 10
node_timeout = 120
recoverable_node_timeout = 120
client_timeout = 120
error_suppression_limit = 1000000
error_suppression_interval = 1

[filter:s3api]
use = egg:swift#s3api
location = ${SWIFT_REGION}
max_upload_part_num = 10000

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = ${SECRET_ACCESS_KEY} .admin

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${o.memcachedPort}

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes
`;
}

/** Builds the account, container and object rings: one device each, partition power 10, one replica. */
async function buildRings(dir: string, ports: { account: number; container: number; object: number }): Promise<void> {
  const builder = peerBin("swift-ring-builder");
  await Promise.all(
    (["account", "container", "object"] as const).map(async (ring) => {
      const file = join(dir, `${ring}.builder`);
      for (const args of [["create", "10", "1", "1"], ["add", `r1z1-127.0.0.1:${ports[ring]}/d1`, "1"], ["rebalance"]]) {
        try {
          await run(PYTHON, [builder, file, ...args], { cwd: dir, env: pythonEnv() });
        } catch (err) {
          const e = err as { code?: number; stdout?: string; stderr?: string };
          // rebalance exits 1 with a warning when balance is off; a one-device ring is always balanced.
          throw new Error(`swift-ring-builder ${ring} ${args.join(" ")} failed (${e.code}): ${e.stdout ?? ""}${e.stderr ?? ""}`, {
            cause: err,
          });
        }
      }
    }),
  );
}

/** The caller's environment, minus what would point Debian's python3 at another installation. */
function pythonEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ["PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"]) delete env[k];
  return env;
}

const PIDS_FILE = "pids";

function tail(path: string, lines = 30): string {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Spawned {
  name: Server | "memcached";
  child: ChildProcess;
  exited: boolean;
  log: string;
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

export async function startSwift(options: SwiftOptions = {}): Promise<ThrowawaySwift> {
  const missing = missingSwiftPackages();
  if (missing.length > 0) throw new Error(`Swift needs the Debian packages ${missing.join(", ")} (bash scripts/install-peers.sh)`);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      // A port taken by someone else between freePort() and the bind: try again on new ports.
      if (!(err instanceof PortTaken) || attempt >= 3) throw err;
    }
  }
}

class PortTaken extends Error {}

async function startOnce(options: SwiftOptions): Promise<ThrowawaySwift> {
  const dir = mkdtempSync(join(options.parent ?? tmpdir(), "artifact-swift-"));
  const reaper = options.detach ? undefined : reapGroupsWhenProcessEnds(dir);
  const logLevel = options.logLevel ?? "WARNING";
  const [proxy, account, container, object, memcached] = await distinctFreePorts(5);
  const ports = { proxy: proxy!, account: account!, container: container!, object: object!, memcached: memcached! };
  const spawned: Spawned[] = [];
  const groups = (): number[] => spawned.flatMap((s) => (s.child.pid === undefined ? [] : [s.child.pid]));
  let stopped = false;

  const output = () =>
    spawned
      .map((s) => `--- ${s.name}${s.exited ? " (exited)" : ""}:\n${tail(s.log)}`)
      .join("\n")
      .trim();

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const pgids = groups();
    await killGroups(pgids);
    reaper?.release();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    mkdirSync(join(dir, "devices", "d1"), { recursive: true });
    writeFileSync(join(dir, "swift.conf"), swiftConf());
    for (const server of ["account", "container", "object"] as const) {
      writeFileSync(join(dir, `${server}-server.conf`), backendConf(server, { dir, port: ports[server], logLevel }));
    }
    writeFileSync(
      join(dir, "proxy-server.conf"),
      proxyConf({ dir, port: ports.proxy, workers: options.proxyWorkers ?? 1, logLevel, memcachedPort: ports.memcached }),
    );
    await buildRings(dir, ports);

    const launch = (name: Spawned["name"], command: string, args: string[]): Spawned => {
      const log = join(dir, `${name}.log`);
      const fd = openSync(log, "a");
      // detached: a new session and process group whose id is the child's pid. Swift's own setsid()
      // then fails harmlessly and its workers are forked into this group.
      const child = spawn(command, args, { cwd: dir, detached: true, stdio: ["ignore", fd, fd], env: pythonEnv() });
      closeSync(fd);
      const s: Spawned = { name, child, exited: false, log };
      child.once("exit", () => (s.exited = true));
      child.once("error", () => (s.exited = true));
      if (child.pid !== undefined) reaper?.track(child.pid);
      if (options.detach) child.unref();
      spawned.push(s);
      writeFileSync(join(dir, PIDS_FILE), groups().join("\n") + "\n");
      return s;
    };

    const asRoot = process.getuid?.() === 0;
    // -U 0: no UDP; memcached refuses to run as root without -u.
    launch("memcached", peerBin("memcached"), ["-l", "127.0.0.1", "-p", String(ports.memcached), "-U", "0", "-m", "64", ...(asRoot ? ["-u", "root"] : [])]);
    for (const server of SERVERS) {
      // -v: log to stderr (the log file) too; there is no syslog socket to rely on.
      launch(server, PYTHON, [peerBin(`swift-${server}-server` as Peer), join(dir, `${server}-server.conf`), "-v"]);
    }

    const target: S3Target = {
      endpoint: `http://127.0.0.1:${ports.proxy}`,
      region: SWIFT_REGION,
      accessKeyId: ACCESS_KEY_ID,
      secretAccessKey: SECRET_ACCESS_KEY,
    };
    await waitReady(target, ports, spawned, options.startTimeoutMs ?? 150_000, output);

    return {
      ...target,
      dir,
      ports,
      client: () => s3Client(target),
      createBucket: (prefix) => createBucket(target, prefix),
      output,
      processGroups: () => (stopped ? [] : groups()),
      stop,
    };
  } catch (err) {
    const taken = /address already in use|could not bind/i.test(output());
    await stop();
    if (taken) throw new PortTaken(`a port was taken during start-up: ${(err as Error).message}`);
    throw err;
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const body = await res.text();
    return res.status === 200 && body.trim() === "OK";
  } catch {
    return false;
  }
}

/** Until every backend answers its healthcheck and the proxy answers a signed S3 request. */
async function waitReady(target: S3Target, ports: ThrowawaySwift["ports"], spawned: Spawned[], timeoutMs: number, output: () => string): Promise<void> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  const client = s3Client(target);
  let last = "nothing answered yet";
  try {
    const pending = new Set([ports.account, ports.container, ports.object, ports.proxy]);
    while (Date.now() < deadline) {
      const dead = spawned.find((s) => s.exited);
      if (dead) throw new Error(`Swift's ${dead.name} exited during start-up:\n${output()}`);
      for (const port of [...pending]) if (await answers(`http://127.0.0.1:${port}/healthcheck`)) pending.delete(port);
      if (pending.size > 0) {
        last = `ports ${[...pending].join(", ")} not answering /healthcheck`;
      } else {
        try {
          // Signed with SigV4: proves s3api, tempauth, memcached and the account server.
          await client.send(new ListBucketsCommand({}), { abortSignal: AbortSignal.timeout(10_000) });
          return;
        } catch (err) {
          last = `S3 ListBuckets: ${(err as Error).name}: ${(err as Error).message}`;
        }
      }
      await sleep(250);
    }
    throw new Error(`Swift did not answer S3 within ${Math.round(timeoutMs / 1000)} s (${last}):\n${output()}`);
  } finally {
    client.destroy();
  }
}

/** Stops a Swift started with `detach` (the CLI's `start`): every process group in its pids file, then the dir. */
export async function stopSwiftDir(dir: string): Promise<void> {
  let pgids: number[] = [];
  try {
    pgids = readFileSync(join(dir, PIDS_FILE), "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    // never started, or already stopped
  }
  await killGroups(pgids.filter((p) => Number.isInteger(p) && p > 1));
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The S3 store for a test: the one named by S3_TEST_ENDPOINT (+ S3_TEST_REGION,
 * S3_TEST_ACCESS_KEY_ID, S3_TEST_SECRET_ACCESS_KEY; e.g. from the CLI's `start`), whose stop() does
 * nothing, or else a throwaway Swift of its own. Either way, use a fresh bucket per test.
 */
export async function s3TestServer(
  options: SwiftOptions = {},
): Promise<S3Target & { createBucket(prefix?: string): Promise<string>; client(): S3Client; stop(): Promise<void> }> {
  const endpoint = process.env.S3_TEST_ENDPOINT;
  if (!endpoint) return startSwift(options);
  const target: S3Target = {
    endpoint,
    region: process.env.S3_TEST_REGION ?? SWIFT_REGION,
    accessKeyId: process.env.S3_TEST_ACCESS_KEY_ID ?? ACCESS_KEY_ID,
    secretAccessKey: process.env.S3_TEST_SECRET_ACCESS_KEY ?? SECRET_ACCESS_KEY,
  };
  return { ...target, createBucket: (prefix) => createBucket(target, prefix), client: () => s3Client(target), stop: async () => {} };
}

/** True when a test can get an S3 store: S3_TEST_ENDPOINT is set, or Swift's packages are installed. */
export function haveS3TestServer(suite: string): boolean {
  return Boolean(process.env.S3_TEST_ENDPOINT) || haveSwift(suite);
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

async function cli(): Promise<void> {
  const [command, dir] = process.argv.slice(2);
  if (command === "start") {
    const swift = await startSwift({ detach: true });
    const bucket = await swift.createBucket("bench-");
    const vars = {
      S3_TEST_ENDPOINT: swift.endpoint,
      S3_TEST_REGION: swift.region,
      S3_TEST_ACCESS_KEY_ID: swift.accessKeyId,
      S3_TEST_SECRET_ACCESS_KEY: swift.secretAccessKey,
      S3_TEST_BUCKET: bucket,
      SWIFT_TEST_DIR: swift.dir,
    };
    // Shell assignments for `eval "$(… start)"`: exported, so child processes see them.
    process.stdout.write(
      Object.entries(vars)
        .map(([k, v]) => `export ${k}=${shellQuote(v)}\n`)
        .join(""),
    );
  } else if (command === "stop" && dir) {
    await stopSwiftDir(dir);
  } else {
    process.stderr.write("usage: swift.ts start | stop <dir>\n");
    process.exit(2);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await cli();
