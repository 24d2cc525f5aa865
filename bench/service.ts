// The service under test for the image and registry suites: a database (openTarget) and the
// bench server in its own process, stopped in the right order whatever happens.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { RegistryKind, RegistryService } from "../gen/artifact/v1/registry_pb.js";
import { openTarget, type DatabaseKind, type DatabaseTarget } from "./databases.js";
import { say, tail, using } from "./lifecycle.js";
import { summarizeProfile } from "./profile.js";
import { startBenchServer, type BenchServer } from "./server-process.js";
import type { Settings } from "./settings.js";

export interface Service {
  kind: DatabaseKind;
  /** "service, PostgreSQL" (", 2 workers") */
  label: string;
  /** Server processes: with more than one, CPU and memory are those of the whole process tree. */
  workers: number;
  server: BenchServer;
  target: DatabaseTarget;
  /** host:port of the HTTP listener, for docker:// references. */
  host: string;
  logFile: string;
}

export const databaseLabel = (kind: DatabaseKind) => (kind === "pglite" ? "PGlite" : "PostgreSQL");

export async function withService<R>(kind: DatabaseKind, workDir: string, s: Settings, suite: string, body: (svc: Service) => Promise<R>): Promise<R> {
  say(`${suite}: ${kind}: starting database and server`);
  return using(
    () => openTarget(kind, workDir),
    (target) => target.close(),
    async (target) => {
      // Workers share a database only PostgreSQL can give them.
      const workers = kind === "postgres" ? s.workers : 1;
      const env = { ...target.env, LOG_LEVEL: s.logLevel, DB_POOL_MAX: s.poolMax, SECRET_KEY: "00".repeat(32), WORKERS: String(workers) };
      const logFile = join(workDir, `server-${suite}-${kind}.log`);
      return using(
        () => startBenchServer({ env, logFile }),
        (server) => server.stop(),
        (server) =>
          body({
            kind,
            label: `service, ${databaseLabel(kind)}${workers > 1 ? `, ${workers} workers` : ""}`,
            workers,
            server,
            target,
            host: server.httpUrl.replace(/^http:\/\//, ""),
            logFile,
          }).catch((err: unknown) => {
            say(`${suite}: ${kind}: failed; the server's last log lines:\n${tail(logFile, 15)}`);
            throw err;
          }),
      );
    },
  );
}

/** Runs `during` under the server's CPU profiler when --profile is set, and prints where the time went. */
export async function profiled<T>(
  svc: Pick<Service, "server" | "workers" | "kind">,
  s: Pick<Settings, "profileDir">,
  slug: string,
  during: () => Promise<T>,
): Promise<T> {
  if (!s.profileDir) return during();
  if (svc.workers > 1) {
    say(`  no profile of ${slug}: the ${svc.workers} workers are other processes (profiles need --workers 1)`);
    return during();
  }
  mkdirSync(s.profileDir, { recursive: true });
  const file = join(resolve(s.profileDir), `${slug}-${svc.kind}.cpuprofile`.toLowerCase().replace(/[^a-z0-9.]+/g, "-"));
  const value = await svc.server.profile(file, during);
  say(`  profile ${file}\n${summarizeProfile(file, 12)}`);
  return value;
}

/** Creates a registry through `svc`'s gRPC API (any replica of a set: they share the database). */
export async function createRegistry(
  svc: Pick<Service, "server">,
  registry: { name: string; kind: "hosted" } | { name: string; kind: "remote"; url: string },
): Promise<string> {
  const client = createClient(RegistryService, createGrpcTransport({ baseUrl: svc.server.grpcUrl }));
  const created = await client.createRegistry({
    registry:
      registry.kind === "hosted" ? { name: registry.name, kind: RegistryKind.HOSTED } : { name: registry.name, kind: RegistryKind.REMOTE, url: registry.url },
  });
  return created.id;
}
