// The embedded database (PGlite under DATA_DIR) on a full disk, in real processes on a small tmpfs:
// a start on a full disk exits with a message that says so; while running, a full disk is a clear
// RESOURCE_EXHAUSTED / 507 (never a hang: a PANIC aborts PGlite's WebAssembly instance, and the next
// call into it used to spin for ever), readiness goes down, the process stays up and stops
// cleanly; after space is freed, a restart finds everything that was committed.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { packageRoot } from "../src/paths.js";
import { ADMIN_TOKEN, adminFetch } from "./support/credentials.js";
import { canMountTmpfs, Tmpfs } from "./support/tmpfs.js";

// The service starts with auth on, as by default; the bootstrap admin's token is the tests'
// ADMIN_TOKEN (given through the environment, as automation would) and every call sends it.

const MiB = 1024 * 1024;
const mountable = canMountTmpfs("test/embedded-disk-full.test.ts");
const STOPPED = "the embedded database stopped because the disk holding DATA_DIR is full: free space there, then restart the service (committed data is kept)";

interface Proc {
  child: ChildProcess;
  /** stdout as JSON lines (others as { text }), and stderr. */
  lines: Record<string, unknown>[];
  stderr: () => string;
  exited: Promise<number | null>;
  /** Resolves with the first line that `match` accepts, or rejects when the process ends first or after `ms`. */
  waitFor(match: (line: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
}

function run(script: string, dataDir: string): Proc {
  const child = spawn(process.execPath, ["--import", "tsx", join(packageRoot, script)], {
    env: { ...process.env, ADMIN_TOKEN, DATA_DIR: dataDir, DATABASE_URL: "", DB_HOST: "", HTTP_PORT: "0", GRPC_PORT: "0", LOG_LEVEL: "info" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = "";
  let partial = "";
  const waiters = new Set<() => void>();
  child.stdout.on("data", (d: Buffer) => {
    const text = partial + d.toString();
    const parts = text.split("\n");
    partial = parts.pop()!;
    for (const part of parts.filter(Boolean)) {
      try {
        lines.push(JSON.parse(part) as Record<string, unknown>);
      } catch {
        lines.push({ text: part });
      }
    }
    waiters.forEach((w) => w());
  });
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  void exited.then(() => waiters.forEach((w) => w()));
  return {
    child,
    lines,
    stderr: () => stderr,
    exited,
    waitFor(match, ms = 120_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match);
          if (found) done(() => resolve(found));
          else if (child.exitCode !== null) done(() => reject(new Error(`${script} exited (${child.exitCode}) first:\n${stderr}\n${JSON.stringify(lines)}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`${script}: nothing matched in ${ms} ms:\n${stderr}\n${JSON.stringify(lines)}`))), ms);
        const done = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** The HTTP port a service process logged in its "listening" line. */
const portOf = (line: Record<string, unknown>) => Number(String(line.http).split(":").pop());

async function connect(
  port: number,
  method: string,
  body: object,
): Promise<{ status: number; json: { code?: string; message?: string; registries?: { name: string }[] } }> {
  const res = await adminFetch(`http://127.0.0.1:${port}/artifact.v1.RegistryService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as { code?: string; message?: string } };
}

const createRegistry = (port: number, name: string) => connect(port, "CreateRegistry", { registry: { name, kind: "REGISTRY_KIND_HOSTED" } });

describe.skipIf(!mountable)("the embedded database on a full disk", () => {
  const root = mkdtempSync(join(tmpdir(), "artifact-embedded-full-"));
  const procs: Proc[] = [];
  const disks: Tmpfs[] = [];
  const start = (script: string, dataDir: string) => {
    const proc = run(script, dataDir);
    procs.push(proc);
    return proc;
  };

  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    disks.forEach((d) => d.unmount());
    rmSync(root, { recursive: true, force: true });
  });

  it("refuses to start on a full disk, saying so, with exit code 1", { timeout: 240_000 }, async () => {
    const disk = Tmpfs.mount(join(root, "small"), 2 * MiB);
    disks.push(disk);
    const proc = start("src/main.ts", disk.dir);
    expect(await proc.exited).toBe(1);
    expect(proc.stderr()).toMatch(
      new RegExp(
        `^artifact-service: failed to start: the embedded database cannot start: the disk holding ${join(disk.dir, "pglite")} \\(under DATA_DIR\\) has \\d+ bytes free \\([\\d.]+ MiB\\); free space there \\(a new database needs about 40 MiB\\) and start again\\n$`,
      ),
    );
    // Room again: the half-made cluster is made whole on the next start.
    disk.resize(128 * MiB);
    const again = start("src/main.ts", disk.dir);
    const listening = await again.waitFor((l) => typeof l.msg === "string" && l.msg.startsWith("listening"));
    expect((await connect(portOf(listening), "ListRegistries", {})).status).toBe(200);
    again.child.kill("SIGTERM");
    expect(await again.exited).toBe(0);
  });

  it("answers clearly while the disk is full, survives a PANIC of the database, and finds committed data after a restart", { timeout: 300_000 }, async () => {
    const disk = Tmpfs.mount(join(root, "data"), 96 * MiB);
    disks.push(disk);
    const harness = start("test/support/embedded-server.ts", disk.dir);
    const port = Number((await harness.waitFor((l) => l.ready === true)).http);
    expect((await createRegistry(port, "kept")).status).toBe(200);

    // Full: a table that has to grow cannot (an ERROR); the database carries on.
    disk.fill();
    let refused: Awaited<ReturnType<typeof createRegistry>> | undefined;
    for (let i = 0; i < 5000 && !refused; i++) {
      const res = await createRegistry(port, `filler-${i}`);
      if (res.status !== 200) refused = res;
    }
    expect(refused?.json).toEqual({
      code: "resource_exhausted",
      message: "the database is full (no space left on the disk that holds it): free space or raise the quota, then retry",
    });
    // The log says what the database said (which file could not grow).
    const warning = await harness.waitFor((l) => l.level === 40 && l.procedure === "/artifact.v1.RegistryService/CreateRegistry");
    expect(warning.database).toMatch(/^could not extend file ".*": No space left on device$/);
    disk.free();
    expect((await createRegistry(port, "after-freeing")).status).toBe(200);

    // Nearly full again (room for tables to grow, not for a new 16 MiB write-ahead log segment),
    // and the next write needs a new segment: PostgreSQL PANICs, which aborts PGlite's
    // instance. Every call after that is refused at once.
    disk.fill(MiB);
    harness.child.stdin!.write("switch-wal\n");
    expect(await harness.waitFor((l) => l.switched !== undefined)).toMatchObject({ switched: true });
    const panicked = await createRegistry(port, "lost");
    expect(panicked.json).toEqual({ code: "resource_exhausted", message: STOPPED });
    expect(await harness.waitFor((l) => l.level === 50)).toMatchObject({
      msg: STOPPED,
      panic: expect.stringMatching(/^PANIC: .*No space left on device/) as unknown,
    });
    expect((await connect(port, "ListRegistries", {})).json).toEqual({ code: "resource_exhausted", message: STOPPED });
    const tags = await adminFetch(`http://127.0.0.1:${port}/v2/kept/team/app/tags/list`);
    expect({ status: tags.status, body: await tags.json() }).toEqual({ status: 507, body: { errors: [{ code: "UNKNOWN", message: STOPPED }] } });
    expect((await adminFetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(503);
    expect((await adminFetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect(harness.lines.filter((l) => l.level === 50)).toHaveLength(1);
    harness.child.kill("SIGTERM");
    expect(await harness.exited).toBe(0);

    // Still full: the service does not start, and says why.
    const refusedStart = start("src/main.ts", disk.dir);
    expect(await refusedStart.exited).toBe(1);
    expect(refusedStart.stderr()).toMatch(/failed to start: the embedded database cannot start: the disk holding .* has \d+ bytes free/);

    // Room again: PostgreSQL recovers from its log; everything committed is there.
    disk.free();
    const restarted = start("src/main.ts", disk.dir);
    const listening = await restarted.waitFor((l) => typeof l.msg === "string" && l.msg.startsWith("listening"));
    const names = (await connect(portOf(listening), "ListRegistries", { pageSize: 1000 })).json.registries!.map((r) => r.name);
    expect(names).toContain("kept");
    expect(names).toContain("after-freeing");
    expect(names).not.toContain("lost");
    restarted.child.kill("SIGTERM");
    expect(await restarted.exited).toBe(0);
  });
});
