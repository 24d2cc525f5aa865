// Starts bench/server.ts, compiled, as a child process and speaks to it over IPC.
import { execFile, fork, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { FromServer, ToServer } from "./server.js";

export interface BenchServer {
  httpUrl: string;
  grpcUrl: string;
  pid: number;
  /** Profiles the server's CPU while `during` runs; the profile is written to `file`. */
  profile<T>(file: string, during: () => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** Merged over a clean environment: only what src/config.ts reads, nothing from the caller's DATABASE_URL. */
  env: Record<string, string>;
  /** The server's stdout (its pino log) goes here. */
  logFile: string;
}

// The server runs compiled (bench/tsconfig.server.json), as `npm start` runs the service.
const entry = fileURLToPath(new URL("./.cache/server/bench/server.js", import.meta.url));
const tsconfig = fileURLToPath(new URL("./tsconfig.server.json", import.meta.url));
let compiled: Promise<void> | undefined;

/** Compiles the server once per bench run; tsc's own output when it fails. */
function compileServer(): Promise<void> {
  compiled ??= new Promise((resolve, reject) => {
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
    execFile(process.execPath, [tsc, "-p", tsconfig], { maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`compiling the bench server (tsc -p bench/tsconfig.server.json) failed:\n${stdout}${stderr}`)) : resolve(),
    );
  });
  return compiled;
}
const CONFIG_KEYS =
  /^(DATABASE_URL|DB_[A-Z_]+|DATA_DIR|HTTP_[A-Z]+|GRPC_[A-Z]+|LOG_LEVEL|SECRET_KEY|SHUTDOWN_TIMEOUT_MS|WORKERS|UPSTREAM_ALLOWED_NETWORKS|AUTH_[A-Z_]+|ADMIN_[A-Z_]+|TLS_[A-Z_]+|READ_CACHE_[A-Z_]+|CONTENT_STORE|S3_[A-Z_]+|BLOB_REDIRECT[A-Z_]*)$/;

export async function startBenchServer(options: ServerOptions): Promise<BenchServer> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!CONFIG_KEYS.test(k)) env[k] = v;
  // The peer registries (REMOTE upstreams of the image suite) listen on loopback, which the service refuses by default.
  // The bench clients send no credential yet (identity phase 1): every caller is an admin.
  Object.assign(
    env,
    {
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: "0",
      GRPC_HOST: "127.0.0.1",
      GRPC_PORT: "0",
      SHUTDOWN_TIMEOUT_MS: "3000",
      UPSTREAM_ALLOWED_NETWORKS: "127.0.0.0/8",
      AUTH_ANONYMOUS_ADMIN: "true",
    },
    options.env,
  );

  await compileServer();
  const log = openSync(options.logFile, "a");
  const child: ChildProcess = fork(entry, [], { env, execArgv: [], stdio: ["ignore", log, log, "ipc"] });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const next = (type: FromServer["type"]) =>
    new Promise<FromServer>((resolve, reject) => {
      const onMessage = (m: FromServer) => {
        if (m.type === type || m.type === "error") {
          child.off("message", onMessage);
          child.off("exit", onExit);
          if (m.type === "error") reject(new Error(`bench server: ${m.message} (log: ${options.logFile})`));
          else resolve(m);
        }
      };
      const onExit = (code: number | null) => reject(new Error(`bench server exited with ${code} (log: ${options.logFile})`));
      child.on("message", onMessage);
      child.once("exit", onExit);
    });

  child.on("error", () => {}); // a send to a child that just died; exit is handled below
  const send = (m: ToServer) => {
    if (child.connected) child.send(m);
  };
  const ready = (await next("ready")) as Extract<FromServer, { type: "ready" }>;
  return {
    httpUrl: `http://127.0.0.1:${ready.httpPort}`,
    grpcUrl: `http://127.0.0.1:${ready.grpcPort}`,
    pid: child.pid!,
    async profile(file, during) {
      const started = next("profiling");
      send({ type: "profile-start" });
      await started;
      try {
        return await during();
      } finally {
        const written = next("profiled");
        send({ type: "profile-stop", file });
        await written;
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      send({ type: "stop" });
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
