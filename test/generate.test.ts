// gen/ is checked in and never edited by hand: it must be exactly what `npm run generate` makes
// from proto/ and the pinned tools (protoc-gen-es code and the descriptor set reflection serves).
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { descriptorSetFile } from "../src/http/reflection.js";
import { packageRoot } from "../src/paths.js";

const run = promisify(execFile);

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

describe("generated code", () => {
  let scratch: string;
  beforeAll(async () => {
    // A copy of exactly what generation reads, so the real `npm run generate` runs untouched.
    scratch = mkdtempSync(join(tmpdir(), "artifact-generate-"));
    for (const item of ["package.json", "buf.yaml", "buf.gen.yaml", "proto"]) cpSync(join(packageRoot, item), join(scratch, item), { recursive: true });
    symlinkSync(join(packageRoot, "node_modules"), join(scratch, "node_modules"), "dir");
    await run("npm", ["run", "--silent", "generate"], { cwd: scratch });
  });
  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it("gen/ is byte for byte what npm run generate makes (run it and commit the result)", () => {
    const fresh = join(scratch, "gen");
    const checkedIn = join(packageRoot, "gen");
    expect(listFiles(checkedIn)).toEqual(listFiles(fresh));
    const differing = listFiles(fresh).filter((file) => !readFileSync(join(fresh, file)).equals(readFileSync(join(checkedIn, file))));
    expect(differing).toEqual([]);
  });

  it("the descriptor set covers every proto in proto/, with source info", () => {
    const set = fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSetFile));
    const described = new Map(set.file.map((f) => [f.name, f]));
    const ours = listFiles(join(packageRoot, "proto")).filter((f) => f.endsWith(".proto"));
    expect(ours.length).toBeGreaterThan(0);
    for (const file of ours) {
      expect([...described.keys()]).toContain(file);
      expect(described.get(file)!.sourceCodeInfo?.location.length, `${file} has source info`).toBeGreaterThan(0);
    }
  });

  it("buf lint proto passes", async () => {
    const result = await run(join(packageRoot, "node_modules", ".bin", "buf"), ["lint", "proto"], { cwd: packageRoot }).catch(
      (err: { stdout: string; code: number }) => err,
    );
    expect(result.stdout).toBe("");
    expect((result as { code?: number }).code ?? 0).toBe(0);
  });
});
