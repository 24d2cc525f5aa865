// The server under test, in its own process: the real startServer with the bench-only routes
// (ceiling, diagnostics) added. Configured through the environment like the product (src/config.ts); talks to its
// parent over IPC: "ready" with the ports, CPU profiles on request, a clean stop.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import type { ConnectRouter } from "@connectrpc/connect";
import type { Logger } from "pino";
import { isClusterWorker, runPrimary, runWorker } from "../src/cluster.js";
import { loadConfig, type Config } from "../src/config.js";
import { createLogger } from "../src/log.js";
import { startServer } from "../src/server.js";
import type { DatabaseHandle } from "../src/db/database.js";
import { ceilingRoutes } from "./ceiling.js";
import { diagnosticRoutes } from "./diagnostics.js";
import { CeilingService, DiagnosticService } from "./services.js";
import { rules, type Rule } from "../src/auth/rules.js";
import { TagService } from "../gen/artifact/v1/tag_pb.js";

export type ToServer = { type: "profile-start" } | { type: "profile-stop"; file: string } | { type: "stop" };
export type FromServer =
  | { type: "ready"; httpPort: number; grpcPort: number; database: string }
  | { type: "profiling" }
  | { type: "profiled"; file: string }
  | { type: "error"; message: string };

const send = (message: FromServer) => process.send?.(message);

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  let database: DatabaseHandle | undefined;
  const diagnostics = diagnosticRoutes(() => database!);
  const extraRoutes = (router: ConnectRouter) => {
    ceilingRoutes(router);
    diagnostics(router);
  };
  // They are judged like the GetTag they mimic, so the ceiling pays what GetTag pays for access.
  const getTag = rules.get(`/${TagService.typeName}/${TagService.method.getTag.name}`)!;
  const extraRules: [string, Rule][] = [CeilingService, DiagnosticService].flatMap((s) =>
    s.methods.map((m): [string, Rule] => [`/${s.typeName}/${m.name}`, getTag]),
  );
  // WORKERS > 1 (--workers): this process is the cluster's primary, as src/main.ts would be.
  if (isClusterWorker()) return runWorker(config, log, { extraRoutes, extraRules });
  if (config.workers > 1) return primary(config, log);
  const server = await startServer(config, log, { extraRoutes, extraRules });
  database = server.database;
  let profiler: Session | undefined;

  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  // Ctrl-C reaches the whole process group: stop cleanly, the parent cleans up the rest.
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
  // The parent died or let go: never outlive it.
  process.on("disconnect", () => void stop());
  process.on("message", (message: ToServer) => {
    void (async () => {
      if (message.type === "stop") return stop();
      if (message.type === "profile-start") {
        profiler = new Session();
        profiler.connect();
        await profiler.post("Profiler.enable");
        await profiler.post("Profiler.setSamplingInterval", { interval: 100 });
        await profiler.post("Profiler.start");
        send({ type: "profiling" });
      } else if (message.type === "profile-stop" && profiler) {
        const { profile } = await profiler.post("Profiler.stop");
        profiler.disconnect();
        profiler = undefined;
        writeFileSync(message.file, JSON.stringify(profile));
        send({ type: "profiled", file: message.file });
      }
    })().catch((err: unknown) => send({ type: "error", message: String(err) }));
  });
  send({ type: "ready", httpPort: server.http.port, grpcPort: server.grpc.port, database: server.database.kind });
}

function primary(config: Config, log: Logger): void {
  const cluster = runPrimary(config, log, {
    onReady: ({ http, grpc }) => {
      const port = (address: string) => Number(address.slice(address.lastIndexOf(":") + 1));
      send({ type: "ready", httpPort: port(http), grpcPort: port(grpc), database: config.database.kind });
    },
  });
  process.on("disconnect", () => cluster.stop());
  process.on("message", (message: ToServer) => {
    if (message.type === "stop") cluster.stop();
    else send({ type: "error", message: "CPU profiles need --workers 1: the workers are other processes" });
  });
}

main().catch((err: unknown) => {
  send({ type: "error", message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
