// A real upstream registry for tests and benchmarks: Debian's docker-registry (CNCF Distribution
// 2.8) on a free loopback port, with filesystem storage in a temp dir (or, with `s3`, in a bucket of
// an S3-compatible store such as swift.ts's), in one of three auth modes: none, htpasswd Basic
// (bcrypt), or token (a token server in this process, see token-server.ts).
//
// The registry runs under a small sh watchdog whose stdin is a pipe from this process: when the
// pipe closes (stop(), or this process dying in any way, even SIGKILL) the watchdog terminates the
// registry, so no registry outlives its test.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { open, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { peerBin } from "./peers.js";
import { removeWhenProcessEnds } from "./reaper.js";
import { freePort } from "./postgres.js";
import type { S3Target } from "./swift.js";
import { startTokenServer, type Credentials, type TokenServer } from "./token-server.js";

export type { Credentials, TokenRequest, TokenServer } from "./token-server.js";

export type AuthMode = "none" | "basic" | "token";

export interface DistributionOptions {
  auth?: AuthMode;
  /** For basic and token modes; default testuser / a random password. */
  credentials?: Credentials;
  /** Token mode: lifetime of issued tokens (default 300 s). */
  tokenTtlSeconds?: number;
  /** Token mode: anonymous clients may pull (default: they get no access). */
  anonymousPull?: boolean;
  /** Distribution's in-memory blob descriptor cache (Debian's default config has it). Default off:
   * with it, a deleted blob can still answer HEAD from the cache. */
  blobDescriptorCache?: boolean;
  /** Distribution log level (default "error"); its output is kept for error messages. */
  logLevel?: "error" | "warn" | "info" | "debug";
  /** Serve TLS (http.tls) with this certificate and key (PEM files); `url` is then https://. */
  tls?: { certFile: string; keyFile: string };
  /** Run as a pull-through cache of this registry (Distribution's `proxy: remoteurl:`); with auth "none" only. */
  proxy?: { remoteUrl: string };
  /**
   * Store content in this S3 bucket (Distribution's s3 driver, path-style through `regionendpoint`,
   * SigV4, no TLS) instead of the filesystem; the bucket must exist. blobDataPath and corruptBlob
   * then throw. `rootDirectory`: a key prefix (default none).
   */
  s3?: S3Target & { bucket: string; rootDirectory?: string };
}

export interface Distribution {
  /** http://127.0.0.1:<port> */
  url: string;
  /** 127.0.0.1:<port>, for docker:// references. */
  host: string;
  port: number;
  auth: AuthMode;
  /** Storage root (the filesystem driver's rootdirectory; unused with `s3`). */
  storageDir: string;
  /** Undefined in mode "none". */
  credentials?: Credentials;
  /** Token mode only: the token server (realm, service, issued requests). */
  tokenServer?: TokenServer;
  /** Headers that authorize a request for `scopes` (e.g. "repository:team/app:pull"); {} in mode none.
   * Token mode fetches a token from the realm with the credentials (or anonymously). */
  authHeaders(scopes?: string[], opts?: { anonymous?: boolean }): Promise<Record<string, string>>;
  /** fetch() of `${url}${path}` with authHeaders(scopes) added. */
  fetch(path: string, init?: RequestInit & { scopes?: string[] }): Promise<Response>;
  /** The file where the registry stores `digest`. */
  blobDataPath(digest: string): string;
  /** Damages the stored blob on disk (see corruptBlob). */
  corruptBlob(digest: string, how?: CorruptHow): Promise<void>;
  /** The last lines the registry wrote (for diagnosing a failing test). */
  output(): string;
  /** Stops the registry (SIGTERM, SIGKILL after 3 s) and the token server, and removes every file.
   * Idempotent; call it in afterAll. */
  stop(): Promise<void>;
  /** Kills the registry at once (SIGKILL), keeping its storage: an upstream that disappears mid-request. */
  kill(): Promise<void>;
  /** Starts it again on the same port and storage (after kill(), or stops it gracefully first). */
  restart(): Promise<void>;
  /**
   * SIGSTOP: connections are accepted by the kernel but never answered (a hung upstream).
   * Resolves once the process is really stopped (the signal lands asynchronously).
   */
  freeze(): Promise<void>;
  /** SIGCONT after freeze(). */
  thaw(): void;
}

export type CorruptHow = "flip" | "truncate";

const run = promisify(execFile);

// $0 = docker-registry binary, $1 = config. Prints the registry pid, then waits for stdin to close.
const WATCHDOG = `
exec 3<&0
"$0" serve "$1" </dev/null &
pid=$!
echo "$pid"
( read -r _ <&3 || true; kill -TERM "$pid" 2>/dev/null; kill -CONT "$pid" 2>/dev/null ) &
watcher=$!
exec 3<&-
wait "$pid"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
`;

const live = new Set<number>();
let exitHookInstalled = false;
function trackPid(pid: number): void {
  live.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Belt and braces with the watchdog: a normal exit kills registries synchronously.
  process.once("exit", () => {
    for (const p of live) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

/** Where Distribution's filesystem driver keeps a blob's bytes. */
export function blobDataPath(storageDir: string, digest: string): string {
  const [alg, hex] = digest.split(":");
  if (!alg || !hex || !/^[a-f0-9]{64,128}$/.test(hex)) throw new Error(`not a digest: ${digest}`);
  return join(storageDir, "docker", "registry", "v2", "blobs", alg, hex.slice(0, 2), hex, "data");
}

/**
 * Damages a blob in the registry's storage so that reads return bytes whose digest is wrong:
 * "flip" inverts one byte in the middle (same size: only a digest check can notice),
 * "truncate" drops the second half (the registry then sends fewer bytes than it announced).
 */
export async function corruptBlob(storageDir: string, digest: string, how: CorruptHow = "flip"): Promise<void> {
  const path = blobDataPath(storageDir, digest);
  const { size } = await stat(path);
  if (size === 0) throw new Error(`cannot corrupt empty blob ${digest}`);
  if (how === "truncate") {
    await truncate(path, Math.floor(size / 2));
    return;
  }
  const fh = await open(path, "r+");
  try {
    const at = Math.floor(size / 2);
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}

function yaml(s: string): string {
  return JSON.stringify(s);
}

function storageYaml(storageDir: string, s3: DistributionOptions["s3"]): string {
  if (!s3) return `  filesystem:\n    rootdirectory: ${yaml(storageDir)}\n`;
  const endpoint = new URL(s3.endpoint);
  // secure: false is what lets Distribution speak plain http to regionendpoint; a regionendpoint
  // also switches its client to path-style addressing.
  return (
    `  s3:\n    accesskey: ${yaml(s3.accessKeyId)}\n    secretkey: ${yaml(s3.secretAccessKey)}\n` +
    `    region: ${yaml(s3.region)}\n    regionendpoint: ${yaml(endpoint.origin)}\n    bucket: ${yaml(s3.bucket)}\n` +
    `    secure: ${endpoint.protocol === "https:"}\n    v4auth: true\n` +
    (s3.rootDirectory ? `    rootdirectory: ${yaml(s3.rootDirectory)}\n` : "")
  );
}

function configYaml(o: {
  storageDir: string;
  s3: DistributionOptions["s3"];
  port: number;
  logLevel: string;
  cache: boolean;
  auth: string;
  tls?: { certFile: string; keyFile: string };
  proxy?: { remoteUrl: string };
}): string {
  return `version: 0.1
log:
  level: ${o.logLevel}
  formatter: text
  accesslog:
    disabled: true
storage:
${storageYaml(o.storageDir, o.s3)}  delete:
    enabled: true
${o.cache ? "  cache:\n    blobdescriptor: inmemory\n" : ""}  maintenance:
    uploadpurging:
      enabled: false
  redirect:
    disable: true
http:
  addr: ${yaml(`127.0.0.1:${o.port}`)}
  secret: ${yaml(randomBytes(16).toString("hex"))}
${o.tls ? `  tls:\n    certificate: ${yaml(o.tls.certFile)}\n    key: ${yaml(o.tls.keyFile)}\n` : ""}  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
${o.auth}${o.proxy ? `proxy:\n  remoteurl: ${yaml(o.proxy.remoteUrl)}\n` : ""}`;
}

/**
 * Distribution reads REGISTRY_* variables as config overrides, and its s3 driver's AWS SDK reads
 * AWS_* (credentials, profiles, AWS_CA_BUNDLE, which makes it panic at start with "unable to load
 * custom CA bundle, HTTPClient's transport unsupported type"): never let the caller's leak in.
 */
function registryEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("REGISTRY_") && !k.startsWith("AWS_")) env[k] = v;
  return env;
}

interface Running {
  child: ChildProcess;
  pid: number;
  exited: Promise<number | null>;
}

export async function startDistribution(options: DistributionOptions = {}): Promise<Distribution> {
  const auth = options.auth ?? "none";
  const dir = mkdtempSync(join(tmpdir(), "artifact-distribution-"));
  removeWhenProcessEnds(dir);
  const storageDir = join(dir, "storage");
  const configPath = join(dir, "config.yml");
  const credentials = auth === "none" ? undefined : (options.credentials ?? { username: "testuser", password: randomBytes(12).toString("base64url") });
  let tokenServer: TokenServer | undefined;
  let authYaml = "";
  try {
    if (auth === "basic") {
      // Cost 4 (the minimum): Distribution checks the bcrypt hash on every request.
      const { stdout } = await run(peerBin("htpasswd"), ["-nbB", "-C", "4", credentials!.username, credentials!.password]);
      await writeFile(join(dir, "htpasswd"), stdout.trim() + "\n", { mode: 0o600 });
      authYaml = `auth:\n  htpasswd:\n    realm: "artifact-test"\n    path: ${yaml(join(dir, "htpasswd"))}\n`;
    } else if (auth === "token") {
      tokenServer = await startTokenServer({ dir, credentials: credentials!, ttlSeconds: options.tokenTtlSeconds, anonymousPull: options.anonymousPull });
      authYaml =
        `auth:\n  token:\n    realm: ${yaml(tokenServer.realm)}\n    service: ${yaml(tokenServer.service)}\n` +
        `    issuer: ${yaml(tokenServer.issuer)}\n    rootcertbundle: ${yaml(tokenServer.certPath)}\n`;
    }
  } catch (err) {
    await tokenServer?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  let port = 0;
  let running: Running | undefined;
  let log: string[] = [];
  const output = () => log.join("").split("\n").slice(-40).join("\n");

  const spawnRegistry = async (): Promise<Running> => {
    await writeFile(
      configPath,
      configYaml({
        storageDir,
        s3: options.s3,
        port,
        logLevel: options.logLevel ?? "error",
        cache: options.blobDescriptorCache ?? false,
        auth: authYaml,
        tls: options.tls,
        proxy: options.proxy,
      }),
    );
    log = [];
    const child = spawn("sh", ["-c", WATCHDOG, peerBin("docker-registry"), configPath], {
      stdio: ["pipe", "pipe", "pipe"],
      env: registryEnv(),
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const keep = (chunk: Buffer) => {
      log.push(chunk.toString());
      if (log.length > 200) log.splice(0, log.length - 200);
    };
    child.stderr.on("data", keep);
    const pid = await new Promise<number>((resolve, reject) => {
      let first = "";
      const onData = (chunk: Buffer) => {
        first += chunk.toString();
        const nl = first.indexOf("\n");
        if (nl < 0) return;
        child.stdout.off("data", onData);
        child.stdout.on("data", keep);
        keep(Buffer.from(first.slice(nl + 1)));
        resolve(Number(first.slice(0, nl)));
      };
      child.stdout.on("data", onData);
      child.once("error", reject);
      void exited.then(() => reject(new Error(`docker-registry exited at once:\n${output()}`)));
    });
    trackPid(pid);
    void exited.then(() => live.delete(pid));
    return { child, pid, exited };
  };

  const waitReady = async (r: Running): Promise<void> => {
    const deadline = Date.now() + 15_000;
    let gone = false;
    void r.exited.then(() => (gone = true));
    while (Date.now() < deadline) {
      if (gone) throw new Error(`docker-registry on port ${port} exited during start-up:\n${output()}`);
      try {
        // Over TLS a cleartext probe is answered 400 by Go's server: listening, and that is all this asks.
        const res = await fetch(`http://127.0.0.1:${port}/v2/`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status === 200 || res.status === 401 || (options.tls && res.status === 400)) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`docker-registry on port ${port} did not answer /v2/ within 15 s:\n${output()}`);
  };

  const start = async (keepPort: boolean): Promise<void> => {
    // A free port can be taken between freePort() and the registry's bind: retry on a new one.
    for (let attempt = 0; ; attempt++) {
      if (!keepPort) port = await freePort();
      const r = await spawnRegistry();
      try {
        await waitReady(r);
        running = r;
        return;
      } catch (err) {
        await terminate(r, "SIGKILL");
        const inUse = /address already in use/i.test(output());
        if (keepPort || !inUse || attempt >= 3) throw err;
      }
    }
  };

  const terminate = async (r: Running, signal: NodeJS.Signals): Promise<void> => {
    if (signal === "SIGKILL") {
      try {
        process.kill(r.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    r.child.stdin!.end(); // the watchdog sends SIGTERM
    const killer = setTimeout(() => {
      try {
        process.kill(r.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }, 3000);
    await r.exited;
    clearTimeout(killer);
    live.delete(r.pid);
  };

  const stopWith = async (signal: NodeJS.Signals) => {
    const r = running;
    running = undefined;
    if (!r) return;
    try {
      process.kill(r.pid, "SIGCONT"); // a frozen registry would hold SIGTERM pending
    } catch {
      // already gone
    }
    await terminate(r, signal);
  };

  try {
    await start(false);
  } catch (err) {
    await tokenServer?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const url = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;
  let stopped = false;
  const authHeaders = async (scopes: string[] = [], opts: { anonymous?: boolean } = {}): Promise<Record<string, string>> => {
    if (auth === "none" || (auth === "basic" && opts.anonymous)) return {};
    if (auth === "basic") {
      return { authorization: `Basic ${Buffer.from(`${credentials!.username}:${credentials!.password}`).toString("base64")}` };
    }
    const q = new URLSearchParams({ service: tokenServer!.service });
    for (const s of scopes) q.append("scope", s);
    const headers: Record<string, string> = opts.anonymous
      ? {}
      : { authorization: `Basic ${Buffer.from(`${credentials!.username}:${credentials!.password}`).toString("base64")}` };
    const res = await fetch(`${tokenServer!.realm}?${q.toString()}`, { headers });
    if (!res.ok) throw new Error(`token server answered ${res.status}: ${await res.text()}`);
    const body = (await res.json()) as { token: string };
    return { authorization: `Bearer ${body.token}` };
  };

  return {
    url,
    host: `127.0.0.1:${port}`,
    port,
    auth,
    storageDir,
    credentials,
    tokenServer,
    authHeaders,
    async fetch(path, init = {}) {
      const { scopes, headers, ...rest } = init;
      const h = new Headers(headers);
      for (const [k, v] of Object.entries(await authHeaders(scopes))) h.set(k, v);
      return fetch(`${url}${path}`, { ...rest, headers: h });
    },
    blobDataPath: (digest) => {
      if (options.s3) throw new Error("blobDataPath: this registry stores its blobs in S3");
      return blobDataPath(storageDir, digest);
    },
    corruptBlob: (digest, how) =>
      options.s3 ? Promise.reject(new Error("corruptBlob: this registry stores its blobs in S3")) : corruptBlob(storageDir, digest, how),
    output,
    kill: () => stopWith("SIGKILL"),
    async restart() {
      await stopWith("SIGTERM");
      await start(true);
    },
    async freeze() {
      if (!running) return;
      const pid = running.pid;
      process.kill(pid, "SIGSTOP");
      // /proc/<pid>/stat: the state after the command name is "T" once every thread has stopped.
      const deadline = Date.now() + 5_000;
      for (;;) {
        const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
        if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("T")) return;
        if (Date.now() > deadline) throw new Error(`docker-registry (pid ${pid}) did not stop after SIGSTOP`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    thaw() {
      if (running) process.kill(running.pid, "SIGCONT");
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopWith("SIGTERM");
      await tokenServer?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Scope strings for Distribution's token auth. */
export const scope = {
  pull: (repo: string) => `repository:${repo}:pull`,
  push: (repo: string) => `repository:${repo}:pull,push`,
  delete: (repo: string) => `repository:${repo}:delete`,
  all: (repo: string) => `repository:${repo}:pull,push,delete`,
  catalog: "registry:catalog:*",
};
