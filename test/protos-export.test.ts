// Protos for other languages: `npm run protos:export` writes proto/ and everything it imports into
// one folder, and a Python gRPC client generated from that folder alone (protoc with it as the
// only include path) works against a live server with the admin's token as call metadata.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createArtifactClient } from "../src/client/node.js";
import { packageRoot } from "../src/paths.js";
import { expectCode } from "./support/clients.js";
import { ADMIN_TOKEN } from "./support/credentials.js";
import { databaseKinds } from "./support/database.js";
import { havePeers, peerBin } from "./support/peers.js";
import { removeWhenProcessEnds } from "./support/reaper.js";
import { startTestServer, type TestServer } from "./support/server.js";

const run = promisify(execFile);

function protoFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".proto"))
    .sort();
}

const importsOf = (text: string) => [...text.matchAll(/^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm)].map((m) => m[1]!);

/** `npm run protos:export -- <dir>`, as the README says; resolves with its output, rejects with it. */
async function exportProtos(dir: string): Promise<string> {
  const { stdout, stderr } = await run("npm", ["run", "--silent", "protos:export", "--", dir], { cwd: packageRoot });
  return stdout + stderr;
}

let scratch: string;
let exported: string;
beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "artifact-protos-"));
  removeWhenProcessEnds(scratch);
  exported = join(scratch, "proto");
  expect(await exportProtos(exported)).toMatch(/^protos:export: \d+ files in /);
}, 120_000);
afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("npm run protos:export", () => {
  it("copies proto/ byte for byte, with the google/api and google/protobuf files they import", () => {
    const ours = protoFiles(join(packageRoot, "proto"));
    expect(ours.length).toBeGreaterThan(0);
    for (const file of ours) expect(readFileSync(join(exported, file)).equals(readFileSync(join(packageRoot, "proto", file))), file).toBe(true);
    const files = protoFiles(exported);
    expect(files).toEqual(expect.arrayContaining(["google/api/annotations.proto", "google/api/http.proto", "google/api/field_behavior.proto"]));
    expect(files).toEqual(expect.arrayContaining(["google/protobuf/descriptor.proto", "google/protobuf/timestamp.proto", "google/protobuf/field_mask.proto"]));
  });

  it("is self-contained: every import of every file is in the folder, and buf builds it with nothing else", async () => {
    const files = protoFiles(exported);
    const unresolved = files.flatMap((file) =>
      importsOf(readFileSync(join(exported, file), "utf8"))
        .filter((i) => !files.includes(i))
        .map((i) => `${file} → ${i}`),
    );
    expect(unresolved).toEqual([]);
    // No buf.yaml there: the folder is the whole module, no npm module paths, no registry.
    await run(join(packageRoot, "node_modules/.bin/buf"), ["build", exported, "-o", join(scratch, "image.binpb")], { cwd: scratch });
    expect(existsSync(join(scratch, "image.binpb"))).toBe(true);
  });

  it("replaces an earlier export, and refuses a folder that is not one", async () => {
    writeFileSync(join(exported, "artifact/v1/stale.proto"), 'syntax = "proto3";\n');
    await exportProtos(exported);
    expect(existsSync(join(exported, "artifact/v1/stale.proto"))).toBe(false);

    const other = join(scratch, "other");
    mkdirSync(other);
    writeFileSync(join(other, "notes.txt"), "mine");
    const refused = await exportProtos(other).then(
      () => "",
      (err: { stderr: string }) => err.stderr,
    );
    expect(refused).toMatch(/is not empty and is not an earlier export/);
    expect(readdirSync(other)).toEqual(["notes.txt"]);
  });
});

const python = havePeers("test/protos-export.test.ts (the Python gRPC client)", "protoc", "grpc-python-plugin", "python3-grpcio");

describe.skipIf(!python)("a Python gRPC client generated from the export (grpcio)", () => {
  let stubs: string;
  beforeAll(async () => {
    stubs = join(scratch, "py");
    mkdirSync(stubs);
    const sources = protoFiles(exported).filter((f) => !f.startsWith("google/protobuf/"));
    // The export is the only include path: an import it lacks fails here.
    await run(
      peerBin("protoc"),
      [
        "-I",
        exported,
        `--python_out=${stubs}`,
        `--grpc_python_out=${stubs}`,
        `--plugin=protoc-gen-grpc_python=${peerBin("grpc-python-plugin")}`,
        ...sources.map((f) => join(exported, f)),
      ],
      { cwd: scratch },
    );
  }, 120_000);

  const catalog = (target: string, token: string) =>
    run(peerBin("python3-grpcio"), [join(packageRoot, "examples/python/catalog.py"), target], {
      cwd: scratch,
      timeout: 60_000,
      env: { ...process.env, PYTHONPATH: stubs, ARTIFACT_TOKEN: token },
    });

  it("generated stubs for every service", () => {
    const generated = readdirSync(join(stubs, "artifact/v1")).sort();
    for (const proto of protoFiles(join(packageRoot, "proto/artifact/v1"))) {
      const base = proto.replace(/\.proto$/, "");
      expect(generated).toEqual(expect.arrayContaining([`${base}_pb2.py`, `${base}_pb2_grpc.py`]));
    }
  });

  describe.each(databaseKinds())("against a server on %s", (kind) => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(kind);
    });
    afterAll(() => server?.stop());

    it.each([
      ["the gRPC port", (s: TestServer) => s.grpcUrl],
      ["the HTTP port", (s: TestServer) => s.httpUrl],
    ])("examples/python/catalog.py signs in with the token and works the catalog on %s", async (_port, url) => {
      const { stdout } = await catalog(new URL(url(server)).host, ADMIN_TOKEN);
      const lines = stdout.trim().split("\n");
      expect(lines[0]).toBe("signed in as admin");
      const created = /^created (example-py-[a-z0-9]{6})\/team\/hello \(([0-9a-f-]{36})\)$/.exec(lines[1] ?? "");
      expect(created, stdout).not.toBeNull();
      expect(lines.slice(2)).toEqual(["repositories: hello", "unknown registry: NOT_FOUND", `deleted ${created![1]}`]);
      // It reached this server's catalog: the registry it made is gone again.
      const admin = createArtifactClient(server.httpUrl, { token: ADMIN_TOKEN });
      await expectCode(admin.registries.getRegistry({ id: created![2]! }), Code.NotFound);
    });

    it("is refused UNAUTHENTICATED with a token the server does not know", async () => {
      const failed = await catalog(new URL(server.grpcUrl).host, "art_not-a-token").then(
        ({ stdout }) => ({ code: 0, stdout, stderr: "" }),
        (err: { code: number; stdout: string; stderr: string }) => err,
      );
      expect(failed.code).not.toBe(0);
      expect(failed.stdout).toBe("");
      expect(failed.stderr).toMatch(/StatusCode\.UNAUTHENTICATED/);
      const left = await createArtifactClient(server.httpUrl, { token: ADMIN_TOKEN }).registries.listRegistries({ query: "example-py-" });
      expect(left.registries).toEqual([]);
    });
  });
});
