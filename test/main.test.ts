// The real entry point as an operator runs it: a process, its log, its signals.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { packageRoot } from "../src/paths.js";
import { createScratchDatabase } from "./support/database.js";
import { freePort } from "./support/postgres.js";

interface Started {
  child: ChildProcess;
  lines: () => string[];
  httpPort: number;
  exited: Promise<number | null>;
}

async function start(env: Record<string, string>, ready = '"msg":"listening'): Promise<Started> {
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ["--import", "tsx", join(packageRoot, "src/main.ts")], {
    env: { ...process.env, HTTP_PORT: String(httpPort), GRPC_PORT: String(grpcPort), LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  child.stdout.on("data", (d: Buffer) => output.push(...d.toString().split("\n").filter(Boolean)));
  child.stderr.on("data", (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!output.some((l) => l.includes(ready))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server did not start:\n${output.join("\n")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, lines: () => output, httpPort, exited };
}

const listRegistries = (port: number) =>
  fetch(`http://127.0.0.1:${port}/artifact.v1.RegistryService/ListRegistries`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });

describe("artifact-service process", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("starts on embedded PGlite with no configuration, says so, and stops cleanly on SIGTERM", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "artifact-main-"));
    dirs.push(dataDir);
    const first = await start({ DATA_DIR: dataDir });
    const log = first.lines().join("\n");
    expect(log).toContain("first start: creating the embedded PGlite cluster");
    expect(log).toContain(`embedded PGlite in ${join(dataDir, "pglite")}`);
    expect((await listRegistries(first.httpPort)).status).toBe(200);
    expect(first.lines().join("\n")).toMatch(/"procedure":"\/artifact.v1.RegistryService\/ListRegistries","code":"ok","ms":[\d.]+/);
    // The generated credential key is private to the service's user.
    expect(statSync(join(dataDir, "secret.key")).mode & 0o777).toBe(0o600);
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    expect(first.lines().join("\n")).toContain('"msg":"stopped"');

    const second = await start({ DATA_DIR: dataDir });
    expect(second.lines().join("\n")).not.toContain("first start");
    second.child.kill("SIGINT");
    expect(await second.exited).toBe(0);
  });

  it.skipIf(!process.env.TEST_DATABASE_URL)("uses PostgreSQL from DATABASE_URL and never logs its password", async () => {
    const scratch = await createScratchDatabase();
    const url = new URL(scratch.url);
    url.password = "hunter2-never-logged";
    try {
      const server = await start({ DATABASE_URL: url.toString(), DATA_DIR: join(tmpdir(), "unused") });
      expect((await listRegistries(server.httpPort)).status).toBe(200);
      server.child.kill("SIGTERM");
      expect(await server.exited).toBe(0);
      const log = server.lines().join("\n");
      expect(log).toContain(`PostgreSQL at ${url.host}${url.pathname}`);
      expect(log).toContain("SECRET_KEY is not set");
      expect(log).not.toContain("hunter2");
    } finally {
      await scratch.drop();
    }
  });

  it("refuses WORKERS above 1 on the embedded PGlite, naming the variable", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "artifact-main-"));
    dirs.push(dataDir);
    const child = spawn(process.execPath, ["--import", "tsx", join(packageRoot, "src/main.ts")], {
      env: { ...process.env, DATA_DIR: dataDir, WORKERS: "2", DATABASE_URL: "", DB_HOST: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(2);
    expect(stderr).toContain('WORKERS="2": more than one worker needs PostgreSQL');
  });

  it.skipIf(!process.env.TEST_DATABASE_URL)(
    "WORKERS=2: both workers serve one port, /metrics adds them up, a killed worker is replaced, SIGTERM stops all",
    async () => {
      const scratch = await createScratchDatabase();
      const dataDir = mkdtempSync(join(tmpdir(), "artifact-main-"));
      dirs.push(dataDir);
      try {
        const server = await start({ DATABASE_URL: scratch.url, DATA_DIR: dataDir, WORKERS: "2" }, '"msg":"listening with 2 workers');
        const records = () => server.lines().flatMap((l) => (l.startsWith("{") ? [JSON.parse(l) as Record<string, unknown>] : []));
        // A new connection per call: the primary hands connections to the workers in turn.
        const call = () =>
          fetch(`http://127.0.0.1:${server.httpPort}/artifact.v1.RegistryService/ListRegistries`, {
            method: "POST",
            headers: { "content-type": "application/json", connection: "close" },
            body: "{}",
          });
        for (let i = 0; i < 6; i++) expect((await call()).status).toBe(200);
        const served = records()
          .filter((r) => r.msg === "call")
          .map((r) => r.worker);
        expect(new Set(served)).toEqual(new Set([0, 1]));

        const metrics = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
        expect(metrics).toMatch(/^artifact_rpc_calls_total\{procedure="\/artifact.v1.RegistryService\/ListRegistries",code="ok"\} 6$/m);
        expect(metrics).toMatch(/^artifact_database_up\{driver="postgres"\} 1$/m);

        const victim = records().find((r) => r.worker === 1 && typeof r.msg === "string" && r.msg.startsWith("listening"))!.pid as number;
        process.kill(victim, "SIGKILL");
        const deadline = Date.now() + 30_000;
        const replaced = () => records().some((r) => r.worker === 1 && r.pid !== victim && typeof r.msg === "string" && r.msg.startsWith("listening"));
        while (!replaced()) {
          if (Date.now() > deadline) throw new Error(`worker 1 was not replaced:\n${server.lines().join("\n")}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(records().some((r) => r.msg === "worker exited unexpectedly: starting another in 1000 ms" && r.signal === "SIGKILL")).toBe(true);
        for (let i = 0; i < 4; i++) expect((await call()).status).toBe(200);

        server.child.kill("SIGTERM");
        expect(await server.exited).toBe(0);
        const stopped = records()
          .filter((r) => r.msg === "stopped")
          .map((r) => r.worker ?? "primary");
        expect(new Set(stopped)).toEqual(new Set([0, 1, "primary"]));
      } finally {
        await scratch.drop();
      }
    },
    90_000,
  );
});
