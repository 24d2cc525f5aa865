// The real entry point as an operator runs it: a process, its log, its signals.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { closeSync, mkdtempSync, openSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { packageRoot } from "../src/paths.js";
import { ADMIN_TOKEN, adminFetch } from "./support/credentials.js";
import { createScratchDatabase } from "./support/database.js";
import { freePort } from "./support/postgres.js";

// The service starts with auth on, as by default; the bootstrap admin's token is the tests'
// ADMIN_TOKEN (given through the environment, as automation would) and every call sends it.

interface Started {
  child: ChildProcess;
  lines: () => string[];
  httpPort: number;
  exited: Promise<number | null>;
}

async function start(env: Record<string, string>, ready = '"msg":"listening', imports: string[] = []): Promise<Started> {
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ["--import", "tsx", ...imports.flatMap((i) => ["--import", i]), join(packageRoot, "src/main.ts")], {
    env: { ...process.env, ADMIN_TOKEN, HTTP_PORT: String(httpPort), GRPC_PORT: String(grpcPort), LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  let partial = "";
  child.stdout.on("data", (d: Buffer) => {
    const text = partial + d.toString();
    const cut = text.lastIndexOf("\n");
    partial = text.slice(cut + 1);
    output.push(
      ...text
        .slice(0, cut + 1)
        .split("\n")
        .filter(Boolean),
    );
  });
  child.stderr.on("data", (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!output.some((l) => l.includes(ready))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      // A service that did not come up in time must not outlive the test (nor its workers: SIGTERM stops them).
      child.kill("SIGTERM");
      throw new Error(`server did not start:\n${output.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, lines: () => output, httpPort, exited };
}

const listRegistries = (port: number) =>
  adminFetch(`http://127.0.0.1:${port}/artifact.v1.RegistryService/ListRegistries`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });

// Every test here starts whole processes (a first PGlite start alone takes 15 s on a busy machine).
describe("artifact-service process", { timeout: 180_000 }, () => {
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

    // A second service on the same DATA_DIR refuses to start, naming the directory and the holder.
    const holder = first.lines().find((l) => l.includes('"msg":"worker ready"'))!;
    const holderPid = (JSON.parse(holder) as { pid: number }).pid;
    const intruder = spawn(process.execPath, ["--import", "tsx", join(packageRoot, "src/main.ts")], {
      env: {
        ...process.env,
        ADMIN_TOKEN,
        DATA_DIR: dataDir,
        HTTP_PORT: String(await freePort()),
        GRPC_PORT: String(await freePort()),
        LOG_LEVEL: "info",
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let refusal = "";
    intruder.stderr.on("data", (d: Buffer) => (refusal += d.toString()));
    expect(await new Promise((resolve) => intruder.once("exit", resolve))).toBe(1);
    expect(refusal).toContain(`the embedded database in ${join(dataDir, "pglite")} is in use by another artifact-service process (pid ${holderPid}`);
    expect((await listRegistries(first.httpPort)).status).toBe(200);
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
      env: { ...process.env, ADMIN_TOKEN, DATA_DIR: dataDir, WORKERS: "2", DATABASE_URL: "", DB_HOST: "" },
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
        const call = (init: RequestInit = {}) =>
          adminFetch(`http://127.0.0.1:${server.httpPort}/artifact.v1.RegistryService/ListRegistries`, {
            method: "POST",
            headers: { "content-type": "application/json", connection: "close" },
            body: "{}",
            ...init,
          });
        for (let i = 0; i < 6; i++) expect((await call()).status).toBe(200);
        const served = records()
          .filter((r) => r.msg === "call")
          .map((r) => r.worker);
        expect(new Set(served)).toEqual(new Set([0, 1]));

        const metrics = await (await adminFetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
        expect(metrics).toMatch(/^artifact_rpc_calls_total\{procedure="\/artifact.v1.RegistryService\/ListRegistries",code="ok"\} 6$/m);
        expect(metrics).toMatch(/^artifact_database_up\{driver="postgres"\} 1$/m);

        const victim = records().find((r) => r.worker === 1 && r.msg === "worker ready")!.pid as number;
        process.kill(victim, "SIGKILL");
        const deadline = Date.now() + 30_000;
        const replaced = () => records().some((r) => r.worker === 1 && r.pid !== victim && r.msg === "worker ready");
        while (!replaced()) {
          if (Date.now() > deadline) throw new Error(`worker 1 was not replaced:\n${server.lines().join("\n")}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(records().some((r) => r.msg === "worker exited unexpectedly: starting another" && r.signal === "SIGKILL")).toBe(true);
        for (let i = 0; i < 4; i++) expect((await call()).status).toBe(200);

        // Both workers gone at once: a connection is never left waiting on the primary. It gets a
        // 503 from the primary, a closed connection, or (once a replacement is up) its answer.
        const live = records().flatMap((r) => (r.msg === "worker ready" && r.pid !== victim ? [r.pid as number] : []));
        expect(live).toHaveLength(2);
        for (const pid of live) process.kill(pid, "SIGKILL");
        const answers = new Set<number>();
        for (let i = 0; i < 40; i++) {
          const status = await call({ signal: AbortSignal.timeout(5_000) }).then(
            (res) => res.status,
            (err: unknown) => ((err as Error).name === "TimeoutError" ? -1 : 0),
          );
          answers.add(status);
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(
          [...answers].filter((a) => ![0, 200, 503].includes(a)),
          "answers other than 0, 200 and 503 (-1: no answer in 5 s)",
        ).toEqual([]);
        expect(answers.has(503)).toBe(true);

        // Both slots serve again (a replacement may still be backing off or starting after the
        // answers above); then SIGTERM must stop every one of them cleanly.
        const gone = new Set([victim, ...live]);
        const serving = () => new Set(records().flatMap((r) => (r.msg === "worker ready" && !gone.has(r.pid as number) ? [r.worker] : [])));
        while (serving().size < 2) {
          if (Date.now() > deadline + 60_000) throw new Error(`the workers were not replaced:\n${server.lines().join("\n")}`);
          await new Promise((r) => setTimeout(r, 100));
        }
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
  );

  describe("a bug that escapes every handler, a reader that goes away", () => {
    const records = (server: Started) => server.lines().flatMap((l) => (l.startsWith("{") ? [JSON.parse(l) as Record<string, unknown>] : []));
    const faultInjection = join(packageRoot, "test/support/fault-injection.ts");
    /** A call that fails (status 0) instead of hanging when nothing answers. */
    const call = (port: number, headers: Record<string, string> = {}) =>
      adminFetch(`http://127.0.0.1:${port}/artifact.v1.RegistryService/ListRegistries`, {
        method: "POST",
        headers: { "content-type": "application/json", connection: "close", ...headers },
        body: "{}",
        signal: AbortSignal.timeout(10_000),
      }).then(
        async (res) => ({ status: res.status, body: await res.text() }),
        (err: unknown) => ({ status: 0, body: String(err) }),
      );
    /** A call whose body takes a moment to arrive: it is surely in flight when the fault strikes. */
    const slowCall = (port: number, headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const req = request(
          {
            host: "127.0.0.1",
            port,
            method: "POST",
            path: "/artifact.v1.RegistryService/ListRegistries",
            headers: { "content-type": "application/json", ...headers },
          },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
          },
        );
        req.on("error", () => resolve(0));
        req.write("{");
        setTimeout(() => req.end("}"), 500);
      });
    const createRegistry = (port: number, name: string) =>
      adminFetch(`http://127.0.0.1:${port}/v1/registries`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name, kind: "REGISTRY_KIND_HOSTED" }),
      });

    it("an unhandled rejection is logged at fatal with the request in flight, and the same worker goes on", async () => {
      const dataDir = mkdtempSync(join(tmpdir(), "artifact-main-"));
      dirs.push(dataDir);
      const server = await start({ DATA_DIR: dataDir, UPSTREAM_ALLOWED_NETWORKS: "127.0.0.0/8" }, '"msg":"listening', [faultInjection]);
      try {
        const worker = records(server).find((r) => r.msg === "worker ready")!.pid;
        expect(await slowCall(server.httpPort, { "x-fault-injection": "reject", "x-request-id": "the-faulty-one" })).toBe(200);
        expect((await call(server.httpPort)).status).toBe(200);
        const fatal = records(server).find((r) => r.level === 60)!;
        expect(fatal).toMatchObject({ worker: 0, pid: worker, err: { message: "injected unhandled rejection" } });
        expect(fatal.inFlight).toEqual([
          expect.objectContaining({ method: "POST", path: "/artifact.v1.RegistryService/ListRegistries", requestId: "the-faulty-one" }),
        ]);
        expect(records(server).filter((r) => r.msg === "worker ready")).toHaveLength(1);

        // The worker knows the ports its primary bound: an upstream there is refused even though
        // UPSTREAM_ALLOWED_NETWORKS allows loopback (a REMOTE registry pointing at itself loops).
        const created = await adminFetch(`http://127.0.0.1:${server.httpPort}/v1/registries`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ name: "itself", kind: "REGISTRY_KIND_REMOTE", url: `http://127.0.0.1:${server.httpPort}` }),
        });
        const { id } = (await created.json()) as { id: string };
        const ping = await adminFetch(`http://127.0.0.1:${server.httpPort}/v1/registries/${id}:ping`, { method: "POST" });
        expect(ping.status).toBe(403);
        expect(((await ping.json()) as { message: string }).message).toMatch(/this service's own listener/);
      } finally {
        server.child.kill("SIGTERM");
        expect(await server.exited).toBe(0);
      }
    });

    it("an uncaught exception ends the worker; another answers, nothing committed is lost, and no request waits on the gap", async () => {
      const dataDir = mkdtempSync(join(tmpdir(), "artifact-main-"));
      dirs.push(dataDir);
      const server = await start({ DATA_DIR: dataDir }, '"msg":"listening', [faultInjection]);
      try {
        expect((await createRegistry(server.httpPort, "before-the-crash")).status).toBe(200);
        const first = records(server).find((r) => r.msg === "worker ready")!.pid;
        // A spare (modules loaded, database not opened) stands by once the service is up.
        for (let i = 0; i < 600 && !records(server).some((r) => r.msg === "a spare worker is ready to take over from one that fails"); i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
        await slowCall(server.httpPort, { "x-fault-injection": "throw", "x-request-id": "the-faulty-one" });
        // Until the new worker is ready every call gets an answer or a closed connection at once:
        // 200 from the worker, 503 from the primary, or 0 for a connection the dying worker held.
        const seen = new Set<number>();
        for (let i = 0; i < 600; i++) {
          const { status } = await call(server.httpPort);
          seen.add(status);
          if (status === 200 && records(server).some((r) => r.msg === "worker ready" && r.pid !== first)) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(
          [...seen].every((s) => [0, 200, 503].includes(s)),
          `answers seen: ${[...seen].join(", ")}`,
        ).toBe(true);
        const fatal = records(server).find((r) => r.level === 60)!;
        expect(fatal).toMatchObject({ worker: 0, pid: first, err: { message: "injected uncaught exception" } });
        expect(fatal.inFlight).toEqual(expect.arrayContaining([expect.objectContaining({ requestId: "the-faulty-one" })]));
        expect(records(server).some((r) => r.msg === "worker exited unexpectedly: starting another" && r.restartInMs === 0)).toBe(true);
        const replacement = records(server).find((r) => r.msg === "worker ready" && r.pid !== first);
        expect(replacement, server.lines().join("\n")).toBeDefined();
        // It was the spare.
        expect(records(server).find((r) => r.msg === "the spare worker takes over")?.pid).toBe(replacement!.pid);
        const listed = (await call(server.httpPort)).body;
        expect(listed).toContain("before-the-crash");
      } finally {
        server.child.kill("SIGTERM");
        expect(await server.exited).toBe(0);
      }
    });

    it("stops on SIGTERM after whatever read its stdout went away (npm start | head -3)", async () => {
      const dataDir = mkdtempSync(join(tmpdir(), "artifact-main-"));
      dirs.push(dataDir);
      // A real pipe into a real `head -n 3`, as a shell builds it.
      const fifo = join(dataDir, "stdout");
      execFileSync("mkfifo", [fifo]);
      // Opened read-write so that neither open waits for the other end; the test keeps no end of it.
      const headIn = openSync(fifo, "r+");
      const head = spawn("head", ["-n", "3"], { stdio: [headIn, "ignore", "ignore"] });
      closeSync(headIn);
      const headDone = new Promise((resolve) => head.once("exit", resolve));
      const out = openSync(fifo, "w");
      const httpPort = await freePort();
      // What `npm start` runs: the compiled service (under tsx the stdout failure did not show).
      execFileSync(process.execPath, [join(packageRoot, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], { cwd: packageRoot });
      const child = spawn(process.execPath, [join(packageRoot, "dist/src/main.js")], {
        env: {
          ...process.env,
          ADMIN_TOKEN,
          DATA_DIR: dataDir,
          HTTP_PORT: String(httpPort),
          GRPC_PORT: String(await freePort()),
          SHUTDOWN_TIMEOUT_MS: "2000",
        },
        stdio: ["ignore", out, "ignore"],
        // Its own process group, so that the whole tree can be killed if it hangs.
        detached: true,
      });
      closeSync(out);
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      try {
        await headDone;
        // The reader is gone: every line the service writes from now on meets EPIPE.
        let ready = false;
        for (let i = 0; i < 600 && !ready; i++) {
          ready = (await call(httpPort)).status === 200;
          if (!ready) await new Promise((r) => setTimeout(r, 100));
        }
        expect(ready).toBe(true);
        for (let i = 0; i < 5; i++) expect((await call(httpPort)).status).toBe(200);
        child.kill("SIGTERM");
        const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("still running"), 20_000))]);
        expect(code).toBe(0);
      } finally {
        if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
      }
    });
  });
});
