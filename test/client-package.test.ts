// @artifact-service/client as a user gets it: built, packed with `npm pack`, installed from its
// tarball into an empty directory, type-checked against its declarations and run against a live
// server. The install is offline with an empty npm cache: the four runtime packages, packed from
// this repository's node_modules, stand in for the registry, so a dependency the package should not
// have (anything of the server's) has nowhere to come from and fails the install.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createArtifactClient } from "../src/client/node.js";
import { packageRoot } from "../src/paths.js";
import { expectCatalogExampleOutput } from "./support/clients.js";
import { ADMIN_TOKEN } from "./support/credentials.js";
import { databaseKinds } from "./support/database.js";
import { removeWhenProcessEnds } from "./support/reaper.js";
import { startTestServer, type TestServer } from "./support/server.js";

const run = promisify(execFile);
const NAME = "@artifact-service/client";
const RUNTIME = ["@bufbuild/protobuf", "@connectrpc/connect", "@connectrpc/connect-node", "@connectrpc/connect-web"];
/** What the server needs and the client must never pull in. */
const SERVER_ONLY = ["@electric-sql/pglite", "drizzle-orm", "postgres", "pg", "pino", "argon2", "jose", "prom-client", "re2js", "undici"];

interface Packed {
  name: string;
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string }[];
}

/** Total bytes of the files under `dir`. */
function bytesUnder(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .reduce((sum, entry) => sum + statSync(join(entry.parentPath, entry.name)).size, 0);
}

/** Package folders in node_modules: `name` or `@scope/name`. */
function installedPackages(nodeModules: string): string[] {
  return readdirSync(nodeModules)
    .filter((entry) => !entry.startsWith("."))
    .flatMap((entry) => (entry.startsWith("@") ? readdirSync(join(nodeModules, entry)).map((name) => `${entry}/${name}`) : [entry]))
    .sort();
}

describe(`${NAME}, packed and installed into an empty directory`, () => {
  let scratch: string;
  let app: string;
  let client: Packed;
  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), "artifact-client-package-"));
    removeWhenProcessEnds(scratch);
    await run(process.execPath, [join(packageRoot, "packages/client/build.mjs")], { cwd: packageRoot });
    // --ignore-scripts: built just above, so prepack need not build again.
    const { stdout } = await run(
      "npm",
      ["pack", "--ignore-scripts", "--json", "--pack-destination", scratch, "./packages/client", ...RUNTIME.map((p) => join(packageRoot, "node_modules", p))],
      { cwd: packageRoot },
    );
    const tarballs = JSON.parse(stdout) as Packed[];
    client = tarballs.find((t) => t.name === NAME)!;
    app = join(scratch, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    await run(
      "npm",
      [
        "install",
        "--offline",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--cache",
        join(scratch, "npm-cache"),
        ...tarballs.map((t) => join(scratch, t.filename)),
      ],
      { cwd: app },
    );
  }, 300_000);
  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  // Most of the package is the generated code of the API's services (with declarations) and the
  // CLI's commands, so it grows with the API: 118 kB packed, 516 kB unpacked with fourteen
  // services. A server module pulled in by an import would add far more than the margin here.
  it("is small: the package about a hundred kilobytes, its whole install a few megabytes", () => {
    const installed = bytesUnder(join(app, "node_modules"));
    console.info(
      `${NAME}: packed ${client.size} B, unpacked ${client.unpackedSize} B, ${client.files.length} files; ` +
        `node_modules of the install ${installed} B (${installedPackages(join(app, "node_modules")).length} packages)`,
    );
    expect(client.size).toBeLessThan(150_000);
    expect(client.unpackedSize).toBeLessThan(650_000);
    expect(installed).toBeLessThan(8_000_000);
  });

  it("holds the generated code and the client only, and pulls in no server dependency", async () => {
    const paths = client.files.map((f) => f.path).sort();
    expect(
      paths.filter((p) => !/^dist\/(gen\/artifact\/v1|gen\/google\/api|src\/client|src\/cli\/artifact(\/commands)?)\/[a-z_-]+\.(js|d\.ts)$/.test(p)),
    ).toEqual(["README.md", "package.json"]);
    expect(paths).toContain("dist/gen/artifact/v1/registry_pb.d.ts");
    expect(paths).toContain("dist/src/client/node.d.ts");

    const manifest = JSON.parse(readFileSync(join(app, "node_modules", NAME, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    expect(Object.keys(manifest.dependencies).sort()).toEqual(RUNTIME);
    const packages = installedPackages(join(app, "node_modules"));
    expect(packages).toEqual([NAME, ...RUNTIME].sort());
    for (const server of SERVER_ONLY) expect(packages).not.toContain(server);
    // npm ls exits non-zero on a missing or unmet (peer) dependency.
    await run("npm", ["ls", "--all", "--offline"], { cwd: app });
  });

  it("installs the artifact command line as its bin", async () => {
    const { stdout } = await run(join(app, "node_modules", ".bin", "artifact"), ["--help"], { cwd: app });
    expect(stdout).toMatch(/^Usage: artifact /m);
  });

  it("resolves to the Node entry under Node and to the browser entry for bundlers; both load", async () => {
    const probe = async (conditions: string[], specifier: string) => {
      const code = `const m = await import(${JSON.stringify(specifier)}); console.log(import.meta.resolve(${JSON.stringify(specifier)}), typeof m.createArtifactClient);`;
      const { stdout } = await run(process.execPath, [...conditions.map((c) => `--conditions=${c}`), "--input-type=module", "-e", code], { cwd: app });
      return stdout.trim().replace(`file://${app}/node_modules/${NAME}`, "");
    };
    expect(await probe([], NAME)).toBe("/dist/src/client/node.js function");
    expect(await probe(["browser"], NAME)).toBe("/dist/src/client/browser.js function");
    expect(await probe([], `${NAME}/browser`)).toBe("/dist/src/client/browser.js function");
    expect(await probe([], `${NAME}/node`)).toBe("/dist/src/client/node.js function");
  });

  describe("examples/catalog.ts, importing the package by name", () => {
    beforeAll(() => {
      const source = readFileSync(join(packageRoot, "examples/catalog.ts"), "utf8");
      const rewritten = source.replaceAll('"artifact-service/client"', `"${NAME}"`).replaceAll('"artifact-service/gen/', `"${NAME}/gen/`);
      expect(rewritten).toContain(`from "${NAME}"`);
      expect(rewritten).toContain(`from "${NAME}/gen/artifact/v1/registry_pb.js"`);
      expect(rewritten).not.toContain('"artifact-service/');
      writeFileSync(join(app, "catalog.ts"), rewritten);
    });

    it("type-checks against the installed declarations (strict: an import without types fails)", async () => {
      writeFileSync(
        join(app, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "ES2022",
            lib: ["ES2023"],
            module: "NodeNext",
            moduleResolution: "NodeNext",
            strict: true,
            noEmit: true,
            // Connect's own declarations name DOM types (HeadersInit) that a Node-only lib lacks.
            skipLibCheck: true,
            types: ["node"],
            typeRoots: [join(packageRoot, "node_modules/@types")],
          },
          files: ["catalog.ts"],
        }),
      );
      const result = await run(process.execPath, [join(packageRoot, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: app }).catch(
        (err: { stdout: string }) => ({ stdout: err.stdout }),
      );
      expect(result.stdout).toBe("");
    });

    describe.each(databaseKinds())("against a server on %s", (kind) => {
      let server: TestServer;
      beforeAll(async () => {
        server = await startTestServer(kind);
      });
      afterAll(() => server?.stop());

      it.each(["connect", "grpc", "grpc-web"])("runs over %s from the install directory", async (protocol) => {
        // tsx only strips the types; every import resolves from the install's node_modules.
        const { stdout } = await run(process.execPath, ["--import", import.meta.resolve("tsx"), join(app, "catalog.ts"), server.httpUrl, protocol], {
          cwd: app,
          timeout: 60_000,
          env: { ...process.env, ARTIFACT_TOKEN: ADMIN_TOKEN },
        });
        const name = expectCatalogExampleOutput(stdout);
        const left = await createArtifactClient(server.httpUrl, { token: ADMIN_TOKEN }).registries.listRegistries({ query: name });
        expect(left.registries).toEqual([]);
      });
    });
  });
});
