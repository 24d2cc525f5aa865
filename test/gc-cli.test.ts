// `npm run gc` as an operator runs it: a process that asks the running service to collect.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../src/paths.js";
import { adminFetch, adminTokenFile } from "./support/credentials.js";
import { startTestServer, type TestServer } from "./support/server.js";

const run = promisify(execFile);
const gc = (server: TestServer, ...args: string[]) =>
  run(process.execPath, ["--import", "tsx", join(packageRoot, "src/cli/gc.ts"), "--url", server.httpUrl, ...args], {
    cwd: packageRoot,
    timeout: 60_000,
  });

describe("npm run gc", () => {
  let server: TestServer;
  const tokenFile = adminTokenFile();
  const blob = Buffer.from("an orphan layer nobody references");
  const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;

  beforeAll(async () => {
    server = await startTestServer("pglite");
    const registry = await adminFetch(`${server.httpUrl}/v1/registries`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "gc", kind: "REGISTRY_KIND_HOSTED" }),
    });
    expect(registry.status).toBe(200);
    const upload = await adminFetch(`${server.httpUrl}/v2/gc/team/app/blobs/uploads/?digest=${digest}`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: blob,
    });
    expect(upload.status).toBe(201);
    // Older than the grace period, referenced by no manifest: garbage.
    await server.database.db.execute(`update blobs set push_time = now() - interval '2 hours' where digest = '${digest}'`);
  });
  afterAll(() => server?.stop());

  it("reports what a dry run would free and deletes nothing, then collects", async () => {
    const dry = await gc(server, "--dry-run", "--token-file", tokenFile);
    expect(dry.stdout).toContain("(dry run: nothing deleted)");
    // The test servers keep an hour's grace (GC_GRACE_MS): a dry run says what it keeps.
    expect(dry.stdout).toContain("kept: anything pushed in the last 1h (grace period, GC_GRACE_MS)");
    expect(dry.stdout).toMatch(/blobs would delete:\s+1 \(33 B\)/);
    expect(dry.stdout).toContain(digest);
    expect((await adminFetch(`${server.httpUrl}/v2/gc/team/app/blobs/${digest}`, { method: "HEAD" })).status).toBe(200);

    const real = await gc(server, "--json", "--token-file", tokenFile);
    const report = JSON.parse(real.stdout) as { dryRun: boolean; blobsDeleted: number; bytesFreed: number; sampleDigests: string[] };
    // The report's fields and nothing else (no $typeName or other message internals).
    expect(Object.keys(report).sort()).toEqual(
      ["blobsDeleted", "bytesFreed", "dryRun", "durationMs", "graceSeconds", "manifestsDeleted", "orphansRemoved", "sampleDigests", "uploadsExpired"].sort(),
    );
    expect(report).toMatchObject({ dryRun: false, blobsDeleted: 1, bytesFreed: blob.length, graceSeconds: 3600 });
    expect(report.sampleDigests).toEqual([digest]);
    expect((await adminFetch(`${server.httpUrl}/v2/gc/team/app/blobs/${digest}`, { method: "HEAD" })).status).toBe(404);
    expect(await server.content.stat(digest)).toBeUndefined();
  });

  it("explains itself with --help, and refuses an unknown option with exit status 2", async () => {
    const help = await gc(server, "--help");
    expect(help.stdout).toMatch(/^Usage: npm run gc -- \[options\]/);
    expect(help.stdout).toContain("--dry-run");
    expect(help.stdout).toContain("grace period");
    const bad = await gc(server, "--dry-rum").then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(bad?.code).toBe(2);
    expect(bad?.stderr).toMatch(/^gc: Unknown option '--dry-rum'/);
  });

  it("says clearly when the service is not there", async () => {
    const failed = await run(process.execPath, ["--import", "tsx", join(packageRoot, "src/cli/gc.ts"), "--url", "http://127.0.0.1:9"], {
      cwd: packageRoot,
      timeout: 60_000,
    }).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(/^gc: /);
  });

  it("signs in with the API token in --token-file, and is refused without one", async () => {
    const refused = await gc(server, "--dry-run").then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toMatch(/unauthenticated/i);
    const ok = await gc(server, "--dry-run", "--token-file", tokenFile);
    expect(ok.stdout).toContain("(dry run: nothing deleted)");
  });
});
