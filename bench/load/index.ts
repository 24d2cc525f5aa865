// Runs one load plan in a process of its own (never the server's): wrk for HTTP/1.1 (Connect,
// REST) when installed, the Node worker for gRPC (and for HTTP/1.1 without wrk).
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { LoadPlan, LoadResult } from "./types.js";
import { hasWrk, runWrk } from "./wrk.js";

export type { LoadPlan, LoadResult, PlannedRequest, Protocol } from "./types.js";

export type ClientChoice = "auto" | "node";

const run = promisify(execFile);
const worker = fileURLToPath(new URL("./node-worker.ts", import.meta.url));

export async function runNodeWorker(plan: LoadPlan, workDir: string): Promise<LoadResult> {
  const file = join(workDir, "node-plan.json");
  writeFileSync(file, JSON.stringify(plan));
  const { stdout } = await run(process.execPath, ["--import", "tsx", worker, file], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split("\n").pop()!) as LoadResult;
}

let wrkPresent: boolean | undefined;

export async function runLoad(plan: LoadPlan, workDir: string, client: ClientChoice = "auto"): Promise<LoadResult> {
  wrkPresent ??= hasWrk();
  if (plan.protocol !== "grpc" && client === "auto" && wrkPresent && !plan.ca) return runWrk(plan, workDir);
  return runNodeWorker(plan, workDir);
}

export function wrkAvailable(): boolean {
  wrkPresent ??= hasWrk();
  return wrkPresent;
}
