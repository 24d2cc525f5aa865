// The README's walkthrough runs as written. Every ```sh block that follows a
// `<!-- walkthrough -->` line is run, in order, by one bash with `set -euo pipefail` against a
// live server (auth on, its admin token in data/admin-token as a first start writes it), with
// `localhost:8080` / `localhost:9090` pointed at the server's ports. curl fails on an HTTP error
// (`--fail-with-body`), so a snippet the service refuses fails the test and names its README line.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiServices } from "../src/api/routes.js";
import { packageRoot } from "../src/paths.js";
import { ADMIN_TOKEN } from "./support/credentials.js";
import { havePeers } from "./support/peers.js";
import { startTestServer, type TestServer } from "./support/server.js";

const MARK = "<!-- walkthrough -->";

interface Block {
  /** The README line of the opening fence. */
  line: number;
  code: string;
}

/** The marked blocks of a Markdown text. */
function walkthroughBlocks(markdown: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== MARK) continue;
    const fence = i + 1;
    if (lines[fence]?.trim() !== "```sh") throw new Error(`README.md:${fence + 1}: ${MARK} must be followed by a \`\`\`sh block`);
    const end = lines.findIndex((l, j) => j > fence && l.trim() === "```");
    if (end < 0) throw new Error(`README.md:${fence + 1}: the block never ends`);
    blocks.push({ line: fence + 1, code: lines.slice(fence + 1, end).join("\n") });
    i = end;
  }
  return blocks;
}

describe.skipIf(!havePeers("test/readme.test.ts", "curl", "jq"))("the README walkthrough", () => {
  const blocks = walkthroughBlocks(readFileSync(join(packageRoot, "README.md"), "utf8"));
  let server: TestServer;
  let cwd: string;
  beforeAll(async () => {
    server = await startTestServer("pglite");
    cwd = mkdtempSync(join(tmpdir(), "artifact-readme-"));
    mkdirSync(join(cwd, "data"));
    writeFileSync(join(cwd, "data", "admin-token"), `${ADMIN_TOKEN}\n`, { mode: 0o600 });
  });
  afterAll(async () => {
    await server?.stop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  it("has its walkthrough marked (so a lost marker cannot make this test pass with nothing run)", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(4);
  });

  it("runs every walkthrough block, in order, against a live server", { timeout: 120_000 }, async () => {
    const ports = (code: string) =>
      code.replaceAll("localhost:8080", `127.0.0.1:${server.http.port}`).replaceAll("localhost:9090", `127.0.0.1:${server.grpc.port}`);
    const script = [
      "set -euo pipefail",
      // The README's curl lines are what users paste; here an HTTP error must fail the block.
      'curl() { command curl --fail-with-body --show-error "$@"; }',
      `npx() { if [ "$1" = buf ]; then shift; command "${join(packageRoot, "node_modules", ".bin", "buf")}" "$@"; else command npx "$@"; fi; }`,
      ...blocks.map((b) => `echo "@@ README.md:${b.line}" >&2\n${ports(b.code)}`),
    ].join("\n");
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile("bash", ["-c", script], { cwd, timeout: 100_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    const failedAt = [...result.stderr.matchAll(/@@ (README\.md:\d+)/g)].at(-1)?.[1];
    expect(result.code, `the walkthrough stopped in the block at ${failedAt}:\n${result.stderr.slice(-3000)}\n${result.stdout.slice(-2000)}`).toBe(0);
  });
});

describe("the README's API table", () => {
  const readme = readFileSync(join(packageRoot, "README.md"), "utf8");
  it.each(apiServices.map((s) => s.typeName))("lists %s and every one of its methods", (typeName) => {
    const row = readme.split("\n").find((l) => l.startsWith(`| \`${typeName}\` |`));
    expect(row, `no row for ${typeName}`).toBeDefined();
    const service = apiServices.find((s) => s.typeName === typeName)!;
    expect(service.methods.map((m) => m.name).filter((name) => !row!.includes(`\`${name}\``))).toEqual([]);
  });
});
