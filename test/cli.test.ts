// `artifact`, the command line, as people and scripts run it: a process (`node --import tsx
// src/cli/artifact/main.ts`) with its own HOME, against a live server over the typed client, and
// a CNCF Distribution as a REMOTE registry's upstream. What is asserted is what a user sees:
// stdout, stderr, the exit status, the config file on disk.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve as resolvePath } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import { runCli } from "../src/cli/artifact/app.js";
import { isGroup } from "../src/cli/artifact/cli.js";
import { COMMANDS } from "../src/cli/artifact/commands.js";
import { renderBar } from "../src/cli/artifact/progress.js";
import { createArtifactClient, type ArtifactClient } from "../src/client/node.js";
import { tags as tagsTable } from "../src/db/schema.js";
import { packageRoot } from "../src/paths.js";
import { ADMIN_TOKEN, adminFetch, adminTokenFile } from "./support/credentials.js";
import { databaseKinds } from "./support/database.js";
import { startDistribution, type Distribution } from "./support/distribution.js";
import { bindRole, createAccount, identityClients } from "./support/identity.js";
import { smallImage } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { removeWhenProcessEnds } from "./support/reaper.js";
import { makeIndex, RegistryClient, type PushedImage } from "./support/registry-client.js";
import { seedRepositories } from "./support/registry-seed.js";
import { verifiesWith, WebhookReceiver } from "./support/webhook-receiver.js";
import { eventually } from "./support/grpc-clients.js";
import { startTestServer, type TestServer } from "./support/server.js";

const MAIN = join(packageRoot, "src/cli/artifact/main.ts");
const haveRegistry = havePeers("test/cli.test.ts (REMOTE registries)", "docker-registry", "htpasswd");
/** util-linux's script(1) runs a command on a pseudo-terminal: the CLI's terminal paths. */
const haveScript = existsSync("/usr/bin/script");

/** `artifact …` on a terminal (stdout and stderr both land in the result's stdout); `reply` answers what it prints. */
function onTerminal(home: string, args: string[], reply?: { when: string; send: string }): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn("script", ["-qefc", `"$NODE" --import tsx "$MAIN" ${args.join(" ")}`, "/dev/null"], {
      cwd: packageRoot,
      env: userEnv(home, { NODE: process.execPath, MAIN }),
    });
    let stdout = "";
    let replied = false;
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (reply && !replied && stdout.includes(reply.when)) {
        replied = true;
        child.stdin.write(reply.send);
      }
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr: "" });
    });
    if (!reply) child.stdin.end();
  });
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A HOME of its own (removed when the test process ends), with XDG_CONFIG_HOME inside it unless told otherwise. */
function freshHome(): string {
  const home = mkdtempSync(join(tmpdir(), "artifact-cli-home-"));
  removeWhenProcessEnds(home);
  return home;
}

/** The environment of a user's shell: nothing of ours leaks in (no ARTIFACT_* unless a test sets it). */
function userEnv(home: string, env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: join(home, "xdg"), LANG: "C.UTF-8" };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base;
}

/** Runs `artifact …`; stdin is `input` (or empty), never a terminal. */
function artifact(home: string, args: string[], options: { env?: Record<string, string | undefined>; input?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], { cwd: packageRoot, env: userEnv(home, options.env) });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? "");
  });
}

/** Every error is one line on stderr, `artifact: …`, and never a stack trace. */
function expectOneLineError(run: Run, code: number, mentions: RegExp): void {
  expect({ code: run.code, stderr: run.stderr }).toMatchObject({ code, stderr: expect.stringMatching(/^artifact: [^\n]+\n$/) as unknown });
  expect(run.stderr).toMatch(mentions);
  expect(run.stderr).not.toMatch(/\n\s+at /);
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const json = <T = Record<string, unknown>>(run: Run): T => {
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as T;
};

/** The dispatcher in this process: for help and usage, which never reach a server. */
async function inProcess(home: string, args: string[]): Promise<Run> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = "";
  let stderr = "";
  out.on("data", (d: Buffer) => (stdout += d.toString()));
  err.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await runCli(args, {
    stdout: out,
    stderr: err as unknown as NodeJS.WriteStream,
    stdin: Readable.from([]) as NodeJS.ReadStream,
    env: userEnv(home),
  });
  return { code, stdout, stderr };
}

describe("artifact: help and usage (no server)", () => {
  const home = freshHome();
  const leaves = COMMANDS.flatMap((c) => (isGroup(c) ? c.subcommands.map((s) => ({ path: [c.name, s.name], leaf: s })) : [{ path: [c.name], leaf: c }]));

  it("artifact --help (a process) lists every command with its summary, the precedence and the exit statuses", async () => {
    const run = await artifact(home, ["--help"]);
    expect(run.code).toBe(0);
    for (const c of COMMANDS) expect(run.stdout).toMatch(new RegExp(`^  ${c.name}\\b.*  ${escape(c.summary)}$`, "m"));
    expect(run.stdout).toContain("--url, then ARTIFACT_URL, then the current service of the config file");
    expect(run.stdout).toContain("--token-file, then ARTIFACT_TOKEN, then the token stored for that URL");
    for (const status of ["0  done", "1  usage error", "2  not found", "3  authentication", "4  any other error"]) expect(run.stdout).toContain(status);
  });

  // Every command of the list, so a new one cannot ship without help.
  it.each(leaves.map((l) => [l.path.join(" "), l] as const))("artifact %s --help documents its arguments and options", async (_name, { path, leaf }) => {
    const run = await inProcess(home, [...path, "--help"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe("");
    expect(run.stdout).toMatch(new RegExp(`^Usage: artifact ${path.join(" ")}\\b`));
    for (const arg of leaf.args) expect(run.stdout).toContain(arg);
    for (const [name, spec] of Object.entries(leaf.options ?? {})) {
      expect(run.stdout).toContain(spec.negatable ? `--[no-]${name}` : `--${name}`);
      expect(run.stdout).toContain(spec.description);
    }
    expect(leaf.description.length).toBeGreaterThan(40);
    expect(run.stdout).toContain(leaf.description.trim().split("\n")[0]);
    // -h, `artifact help …` and --help before the command say the same.
    for (const other of [
      [...path, "-h"],
      ["help", ...path],
      ["--help", ...path],
    ])
      expect(await inProcess(home, other)).toEqual(run);
  });

  it("a group's --help lists its commands; so does a process", async () => {
    for (const group of COMMANDS.filter(isGroup)) {
      const run = await inProcess(home, [group.name, "--help"]);
      expect(run.code).toBe(0);
      for (const s of group.subcommands) expect(run.stdout).toMatch(new RegExp(`^  ${s.name} +${escape(s.summary)}`, "m"));
    }
    const run = await artifact(home, ["tokens", "--help"]);
    expect(run).toEqual(await inProcess(home, ["tokens", "--help"]));
  });

  it("usage errors exit 1 with one line: unknown command, option or subcommand, missing or malformed arguments, no URL", async () => {
    const cases: [string[], RegExp][] = [
      [["frobnicate"], /unknown command "frobnicate"/],
      [["registries", "frobnicate"], /unknown command "frobnicate" of artifact registries/],
      [["tags", "list", "local/team/app", "--bogus"], /unknown option '--bogus'/],
      [["tags", "list"], /missing <registry>\/<namespace>\/<repository>/],
      [["tags", "list", "a/b/c", "d"], /unexpected argument "d"/],
      [["tags", "list", "local/team"], /expected <registry>\/<namespace>\/<repository>/],
      [["tags", "list", "localhost:5000/team/app"], /leave out the host/],
      [["tags", "list", "local/team/app", "--page-size", "0"], /--page-size "0": expected a whole number from 1 to 1000/],
      [["tags", "list", "local/team/app", "--sort", "size"], /--sort "size"/],
      [["tags", "list", "local/team/app", "--no-all"], /unknown option '--no-all'/],
      [["inspect", "local/team/app@md5:xyz!"], /is not a digest/],
      [["tag", "local/team/app", "1.0"], /expected <registry>\/<namespace>\/<repository>:<tag>/],
      [["registries", "list", "-o", "yaml"], /--output "yaml": artifact registries list prints table or json/],
      [["tokens", "create", "x", "--ttl", "1w"], /--ttl "1w"/],
      [["registries", "list"], /no service URL: run artifact login <url>/],
      [["--url", "ftp://example.com", "registries"], /must start with http:\/\/ or https:\/\//],
      [["login", "http://127.0.0.1:9"], /stdin is not a terminal; give --token-stdin or --token-file/],
    ];
    for (const [args, message] of cases) expectOneLineError(await inProcess(home, args), 1, message);
    // And as a process: the status and the one line on stderr.
    expectOneLineError(await artifact(home, ["tags", "list", "local/team/app", "--bogus"]), 1, /unknown option '--bogus' \(see artifact tags list --help\)/);
    const bare = await artifact(home, []);
    expect(bare.code).toBe(1);
    expect(bare.stderr).toContain("Usage: artifact");
  });

  it("draws the progress bar to the terminal's width", () => {
    const p = { repositoriesFound: 200, repositoriesSynced: 99, errors: 1, tagsAdded: 7, tagsUpdated: 1, tagsRemoved: 2, repository: "proj/app-099" };
    expect(renderBar(p, 120)).toBe(`[${"=".repeat(15)}>${" ".repeat(14)}] 100/200 repositories  tags +7 ~1 -2  1 error  proj/app-099`);
    expect(renderBar({ ...p, repositoriesSynced: 199 }, 120)).toMatch(/^\[={30}\] 200\/200 /);
    expect(renderBar(p, 40)).toHaveLength(39);
  });

  it("imports nothing of the server: only src/client, gen/, node: built-ins and the client's own packages", async () => {
    // The keep rule's text form (`artifact retention --keep`) is src/client/keep-rule.ts, which the
    // service imports too: one syntax, and no RE2 engine in the client package.
    const allowed = [join(packageRoot, "src/cli/artifact/"), join(packageRoot, "src/client/"), join(packageRoot, "gen/")];
    const seen = new Set<string>();
    const visit = async (file: string): Promise<void> => {
      if (seen.has(file)) return;
      seen.add(file);
      expect(
        allowed.some((dir) => file.startsWith(dir)),
        `${relative(packageRoot, file)} is outside src/cli/artifact, src/client and gen`,
      ).toBe(true);
      const source = await readFile(file, "utf8");
      for (const [, spec] of source.matchAll(/(?:import|export)[^'"]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g)) {
        if (spec === undefined) continue;
        if (spec.startsWith(".")) await visit(resolvePath(dirname(file), spec.replace(/\.js$/, ".ts")));
        else
          expect(spec, `${relative(packageRoot, file)} imports ${spec}`).toMatch(
            /^(node:|@connectrpc\/connect(-node|-web)?$|@bufbuild\/protobuf(\/wkt|\/codegenv[12])?$)/,
          );
      }
    };
    await visit(MAIN);
    expect(seen.size).toBeGreaterThan(10);
  });
});

describe.each(databaseKinds())("artifact against a server on %s", (kind) => {
  let server: TestServer;
  let admin: ArtifactClient;
  let registry: RegistryClient;
  let one: PushedImage;
  let two: PushedImage;
  let index: { bytes: Buffer; digest: string; mediaType: string };
  /** Signed in with `artifact login` as the admin. */
  let home: string;
  const cli = (args: string[], options?: Parameters<typeof artifact>[2]) => artifact(home, args, options);

  beforeAll(async () => {
    server = await startTestServer(kind);
    admin = createArtifactClient(server.httpUrl, { token: ADMIN_TOKEN });
    await admin.registries.createRegistry({ registry: { name: "local", kind: RegistryKind.HOSTED, description: "our images" } });
    registry = new RegistryClient(server.httpUrl);
    // Pushed in this order, so newest first is multi, 2.0, 1.0.
    one = await registry.pushImage("local/team/app", "1.0");
    two = await registry.pushImage("local/team/app", "2.0", { layerBytes: 5000 });
    index = makeIndex([one.descriptor, two.descriptor]);
    expect((await registry.putManifest("local/team/app", "multi", index.bytes, index.mediaType)).status).toBe(201);
    await registry.pushImage("local/ops/tools", "latest");
    home = freshHome();
    const login = await cli(["login", server.httpUrl, "--token-file", adminTokenFile()]);
    expect(login.code, login.stderr).toBe(0);
  });
  afterAll(() => server?.stop());

  // Independent of each other (their own HOMEs, or reads only): run side by side.
  describe.concurrent("login, logout, whoami", () => {
    it("refuses a wrong token with exit 3 and stores nothing", async () => {
      const fresh = freshHome();
      const run = await artifact(fresh, ["login", server.httpUrl, "--token-stdin"], { input: "art_not-a-valid-token\n" });
      expectOneLineError(run, 3, /unauthenticated/);
      expect(existsSync(join(fresh, "xdg/artifact"))).toBe(false);
    });

    it("stores URL and token in ~/.config/artifact/config.json (dir 0700, file 0600) and never prints the token", async () => {
      const fresh = freshHome();
      const run = await artifact(fresh, ["login", `${server.httpUrl}/`, "--token-stdin"], { input: `${ADMIN_TOKEN}\n`, env: { XDG_CONFIG_HOME: undefined } });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain(`Signed in to ${server.httpUrl} as admin (user)`);
      const file = join(fresh, ".config/artifact/config.json");
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(dirname(file)).mode & 0o777).toBe(0o700);
      expect(JSON.parse(readFileSync(file, "utf8"))).toEqual({
        current: server.httpUrl,
        servers: { [server.httpUrl]: { token: ADMIN_TOKEN, account: "admin" } },
      });
      const who = await artifact(fresh, ["whoami"], { env: { XDG_CONFIG_HOME: undefined } });
      expect(who.code, who.stderr).toBe(0);
      expect(who.stdout).toMatch(/^Account: +admin \(user\)$/m);
      expect(who.stdout).toMatch(/^Roles: +admin \(global\)$/m);
      for (const out of [run.stdout, run.stderr, who.stdout, who.stderr]) expect(out).not.toContain(ADMIN_TOKEN);
    });

    it("honours the precedence: --token-file over ARTIFACT_TOKEN over the stored token; a stored token goes only to its URL", async () => {
      const bad = { ARTIFACT_TOKEN: "art_wrong" };
      expectOneLineError(await cli(["whoami"], { env: bad }), 3, /invalid API token/);
      const fromFile = json<{ account: { name: string }; credentialSource: string }>(
        await cli(["whoami", "-o", "json", "--token-file", adminTokenFile()], { env: bad }),
      );
      expect(fromFile).toMatchObject({ account: { name: "admin" }, credentialSource: `--token-file ${adminTokenFile()}` });
      // The same server under another spelling is another URL: the stored token is not sent there.
      const otherSpelling = server.httpUrl.replace("127.0.0.1", "localhost");
      expectOneLineError(await cli(["whoami"], { env: { ARTIFACT_URL: otherSpelling } }), 3, /unauthenticated/);
      expectOneLineError(
        await cli(["--url", "http://127.0.0.1:9", "registries"]),
        4,
        /cannot reach the service at http:\/\/127\.0\.0\.1:9: connect ECONNREFUSED/,
      );
    });

    it.skipIf(!haveScript)("on a terminal, login asks for the token without echoing it", async () => {
      const fresh = freshHome();
      const run = await onTerminal(fresh, ["login", server.httpUrl], { when: "API token: ", send: `${ADMIN_TOKEN}\r` });
      expect(run.code, run.stdout).toBe(0);
      expect(run.stdout).toContain(`Signed in to ${server.httpUrl} as admin (user)`);
      expect(run.stdout).not.toContain(ADMIN_TOKEN);
      expect(JSON.parse(readFileSync(join(fresh, "xdg/artifact/config.json"), "utf8"))).toMatchObject({ current: server.httpUrl });
    });

    it("logout forgets the token: the next call is anonymous", async () => {
      const fresh = freshHome();
      expect((await artifact(fresh, ["login", server.httpUrl, "--token-file", adminTokenFile()])).code).toBe(0);
      const out = await artifact(fresh, ["logout"]);
      expect(out.code).toBe(0);
      expect(out.stdout).toContain(`Signed out of ${server.httpUrl}`);
      expect(JSON.parse(readFileSync(join(fresh, "xdg/artifact/config.json"), "utf8"))).toEqual({ servers: {} });
      expectOneLineError(await artifact(fresh, ["--url", server.httpUrl, "whoami"]), 3, /unauthenticated/);
    });
  });

  describe.concurrent("reading: lists and inspect", () => {
    it("registries, namespaces and repositories as tables and as JSON with stable fields", async () => {
      const [table, asJson, namespaces, reposAll, reposRegistry, reposNamespace] = await Promise.all([
        cli(["registries"]),
        cli(["registries", "list", "-o", "json"]),
        cli(["namespaces", "list", "local"]),
        cli(["repos", "list"]),
        cli(["repos", "list", "local", "-o", "json"]),
        cli(["repos", "list", "local/team"]),
      ]);
      expect(table.code, table.stderr).toBe(0);
      expect(table.stdout).toMatch(/^NAME +KIND +URL +PUBLIC +UPDATED +DESCRIPTION$/m);
      expect(table.stdout).toMatch(/^local +hosted +- +no +(just now|\d+ seconds? ago) +our images$/m);
      const listed = json<{ registries: Record<string, unknown>[]; totalSize: number; nextPageToken: string }>(asJson);
      const local = listed.registries.find((r) => r.name === "local")!;
      expect(Object.keys(local).sort()).toEqual(
        ["autoCreate", "createTime", "description", "hasCredential", "id", "insecure", "kind", "name", "public", "syncFilter", "updateTime", "url"].sort(),
      );
      expect(local).toMatchObject({ kind: "hosted", url: null, description: "our images", public: false });
      expect(new Date(local.createTime as string).toISOString()).toBe(local.createTime);
      expect(namespaces.stdout).toMatch(/^NAMESPACE +PUBLIC +UPDATED +DESCRIPTION\nlocal\/ops +no .*\nlocal\/team +no /m);
      expect(reposAll.stdout).toMatch(/^local\/ops\/tools +/m);
      expect(reposAll.stdout).toMatch(/^local\/team\/app +/m);
      expect(json<{ repositories: { image: string }[] }>(reposRegistry).repositories.map((r) => r.image)).toEqual(["local/ops/tools", "local/team/app"]);
      expect(
        reposNamespace.stdout
          .trim()
          .split("\n")
          .slice(1)
          .map((l) => l.split(/\s+/)[0]),
      ).toEqual(["local/team/app"]);
    });

    it("tags: newest push first, --sort name, pages with --page-size / --page-token / --all", async () => {
      const [byPush, byName, page1, all] = await Promise.all([
        cli(["tags", "list", "local/team/app"]),
        cli(["tags", "list", "local/team/app", "--sort", "name", "-o", "json"]),
        cli(["tags", "list", "local/team/app", "--page-size", "2"]),
        cli(["tags", "list", "local/team/app", "--page-size", "2", "--all", "-o", "json"]),
      ]);
      expect(byPush.code, byPush.stderr).toBe(0);
      const rows = byPush.stdout.trim().split("\n");
      expect(rows[0]).toMatch(/^TAG +DIGEST +SIZE +PUSHED$/);
      expect(rows.slice(1).map((r) => r.split(/\s+/).slice(0, 2))).toEqual([
        ["multi", index.digest.slice(0, 19)],
        ["2.0", two.digest.slice(0, 19)],
        ["1.0", one.digest.slice(0, 19)],
      ]);
      // Sizes are humanised and aligned right: 2.0 is manifest + config + a 5000-byte layer.
      const twoSize = two.bytes.length + two.config.length + 5000;
      expect(rows[2]).toContain(` ${(twoSize / 1024).toFixed(1)} KiB  `);
      const named = json<{ tags: { name: string; digest: string; sizeBytes: number; mediaType: string }[] }>(byName);
      expect(named.tags.map((t) => t.name)).toEqual(["1.0", "2.0", "multi"]);
      expect(named.tags[1]).toMatchObject({ digest: two.digest, sizeBytes: twoSize, mediaType: two.mediaType });

      expect(page1.stdout.trim().split("\n")).toHaveLength(3);
      const token = /--page-token (\S+)/.exec(page1.stderr)?.[1];
      expect(page1.stderr).toMatch(/^2 of 3 tags shown; --all for every page/);
      const page2 = await cli(["tags", "list", "local/team/app", "--page-size", "2", "--page-token", token!, "-o", "json"]);
      expect(json<{ tags: { name: string }[]; nextPageToken: string }>(page2)).toMatchObject({ tags: [{ name: "1.0" }], nextPageToken: "" });
      expect(json<{ tags: unknown[]; totalSize: number; nextPageToken: string }>(all)).toMatchObject({ totalSize: 3, nextPageToken: "" });
      expect(json<{ tags: unknown[] }>(all).tags).toHaveLength(3);
    });

    it("not found is exit 2, naming what is missing", async () => {
      const runs = await Promise.all([cli(["tags", "list", "local/nope/app"]), cli(["tags", "list", "local/team/nope"]), cli(["namespaces", "list", "nope"])]);
      const expected = [/namespace "local\/nope" not found/, /repository "local\/team\/nope" not found/, /registry "nope" not found/];
      runs.forEach((run, i) => expectOneLineError(run, 2, expected[i]!));
    });

    it("an image: digest, media type, config, layers with sizes, the total a pull downloads", async () => {
      const [table, asJson, raw] = await Promise.all([
        cli(["inspect", "local/team/app:2.0"]),
        cli(["inspect", `local/team/app@${two.digest}`, "-o", "json"]),
        cli(["inspect", "local/team/app:2.0", "--raw"]),
      ]);
      expect(table.code, table.stderr).toBe(0);
      expect(table.stdout).toMatch(new RegExp(`^Digest: +${two.digest}$`, "m"));
      expect(table.stdout).toMatch(/^Media type: +application\/vnd\.oci\.image\.manifest\.v1\+json$/m);
      expect(table.stdout).toMatch(/^1 +sha256:[0-9a-f]{12} +application\/vnd\.oci\.image\.layer\.v1\.tar +4\.9 KiB$/m);
      const info = json<Record<string, unknown>>(asJson);
      expect(info).toMatchObject({
        kind: "image",
        digest: two.digest,
        sizeBytes: two.bytes.length,
        config: { sizeBytes: two.config.length },
        layers: [{ sizeBytes: 5000, mediaType: "application/vnd.oci.image.layer.v1.tar" }],
        manifests: [],
        totalSizeBytes: two.bytes.length + two.config.length + 5000,
      });
      expect(info).not.toHaveProperty("raw");
      expect(raw.stdout).toBe(two.bytes.toString("utf8"));
    });

    it("an index: its platforms, each with its size, and the total over every platform", async () => {
      const [table, asJson] = await Promise.all([
        cli(["inspect", "local/team/app:multi", "--no-trunc"]),
        cli(["inspect", "local/team/app:multi", "-o", "json"]),
      ]);
      expect(table.code, table.stderr).toBe(0);
      expect(table.stdout).toMatch(new RegExp(`^linux/amd64 +${one.digest} +application/vnd\\.oci\\.image\\.manifest\\.v1\\+json +1\\.\\d KiB$`, "m"));
      expect(table.stdout).toMatch(new RegExp(`^linux/arm64 +${two.digest} +`, "m"));
      const sizeOf = (p: PushedImage) => p.bytes.length + p.config.length + p.layer.length;
      expect(json(asJson)).toMatchObject({
        kind: "index",
        digest: index.digest,
        manifests: [
          { platform: "linux/amd64", digest: one.digest, totalSizeBytes: sizeOf(one) },
          { platform: "linux/arm64", digest: two.digest, totalSizeBytes: sizeOf(two) },
        ],
        totalSizeBytes: index.bytes.length + sizeOf(one) + sizeOf(two),
      });
    });

    it("an unknown tag is exit 2", async () => {
      expectOneLineError(await cli(["inspect", "local/team/app:nope"]), 2, /not found/);
    });
  });

  it("tag creates, moves and keeps; untag deletes; each says what it did", async () => {
    const created = json(await cli(["tag", "local/team/app:stable", "1.0", "-o", "json"]));
    expect(created).toEqual({ image: "local/team/app", tag: "stable", digest: one.digest, previousDigest: null, action: "created" });
    const moved = await cli(["tag", "local/team/app:stable", "local/team/app:2.0"]);
    expect(moved.stdout).toBe(`Moved local/team/app:stable to ${two.digest} (from ${one.digest}).\n`);
    const unchanged = json(await cli(["tag", "local/team/app:stable", `@${two.digest}`, "-o", "json"]));
    expect(unchanged).toMatchObject({ action: "unchanged", digest: two.digest });
    const listed = json<{ tags: { name: string; digest: string }[] }>(await cli(["tags", "list", "local/team/app", "--sort", "name", "-o", "json"]));
    expect(listed.tags.find((t) => t.name === "stable")?.digest).toBe(two.digest);

    const [noManifest, noTag, otherRepository] = await Promise.all([
      cli(["tag", "local/team/app:stable", `sha256:${"0".repeat(64)}`]),
      cli(["tag", "local/team/app:stable", "nope"]),
      cli(["tag", "local/team/app:stable", "local/ops/tools:latest"]),
    ]);
    expectOneLineError(noManifest, 2, /not found/);
    expectOneLineError(noTag, 2, /tag "nope" not found in local\/team\/app/);
    expectOneLineError(otherRepository, 1, /its own repository/);

    const untagged = await cli(["untag", "local/team/app:stable"]);
    expect(untagged.stdout).toBe(`Untagged local/team/app:stable (was ${two.digest}).\n`);
    expectOneLineError(await cli(["untag", "local/team/app:stable"]), 2, /tag "stable" not found/);
    expect(await registry.req("HEAD", `/v2/local/team/app/manifests/${two.digest}`).then((r) => r.status)).toBe(200);
  });

  it("rules: add on a namespace, list what protects a repository, a refused move names the rule, delete", async () => {
    // A namespace of its own: the other tests move and delete tags of local/team.
    const first = await registry.pushImage("local/rules/app", "1.0");
    const second = await registry.pushImage("local/rules/app", "scratch");
    const added = json<{ id: string; scope: string; scopeName: string; tagPattern: string }>(
      await cli(["rules", "add", "local/rules", "^1\\..*", "--description", "releases never move", "-o", "json"]),
    );
    expect(added).toMatchObject({ scope: "namespace", scopeName: "local/rules", tagPattern: "^1\\..*" });
    const [table, own, refused, untag, badPattern, noScope] = await Promise.all([
      cli(["rules", "list", "local/rules/app"]),
      cli(["rules", "list", "local/rules/app", "--own", "-o", "json"]),
      cli(["tag", "local/rules/app:1.0", "scratch"]),
      cli(["untag", "local/rules/app:1.0"]),
      cli(["rules", "add", "local/rules/app", "(?=x)"]),
      cli(["rules", "add", "local/nope", "v.*"]),
    ]);
    expect(table.stdout).toMatch(/^ID +SCOPE +TAG PATTERN +CREATED +DESCRIPTION$/m);
    expect(table.stdout).toMatch(new RegExp(`^${added.id} +namespace local/rules +\\^1\\\\\\.\\.\\* +(just now|\\d+ seconds ago) +releases never move$`, "m"));
    expect(json<{ totalSize: number }>(own).totalSize).toBe(0);
    expectOneLineError(refused, 4, new RegExp(`failed precondition: tag local/rules/app:1\\.0 is immutable: immutability rule ${added.id}`));
    expectOneLineError(untag, 4, /forbids deleting it/);
    expectOneLineError(badPattern, 1, /invalid argument: immutability_rule\.tag_pattern/);
    expectOneLineError(noScope, 2, /namespace "local\/nope" not found/);

    expect((await cli(["rules", "delete", added.id])).stdout).toBe(`Deleted rule ${added.id} (^1\\..* in local/rules).\n`);
    expect((await cli(["tag", "local/rules/app:1.0", "scratch"])).stdout).toBe(`Moved local/rules/app:1.0 to ${second.digest} (from ${first.digest}).\n`);
  });

  it("retention: set a policy, the dry run lists what the run then deletes, list shows the rule, delete", async () => {
    // A namespace of its own: three tags pushed 3, 2 and 1 days ago.
    for (const t of ["a", "b", "c"]) await registry.pushImage("local/keep/app", t);
    for (const [t, days] of [
      ["a", 3],
      ["b", 2],
      ["c", 1],
    ] as const) {
      await server.database.db.execute(`update tags set push_time = now() - interval '${days} days' where name = '${t}'
        and repository_id = (select r.id from repositories r join namespaces n on n.id = r.namespace_id where n.name = 'keep' and r.name = 'app')`);
    }
    const set = json<{ id: string; scope: string; keep: string; disabled: boolean }>(
      await cli(["retention", "set", "local/keep", "--keep", 'any_of(most_recent(1), matching("b"))', "--disabled", "-o", "json"]),
    );
    expect(set).toMatchObject({ scope: "namespace", keep: 'any_of(most_recent(1), matching("b"))', disabled: true });
    const [table, badRule, badGrace, dry] = await Promise.all([
      cli(["retention", "list", "local/keep/app"]),
      cli(["retention", "set", "local/keep", "--keep", "most_recent(0)"]),
      cli(["retention", "set", "local/keep", "--untagged-grace", "5 days"]),
      cli(["retention", "run", "local/keep", "--dry-run"]),
    ]);
    expect(table.stdout).toMatch(new RegExp(`^${set.id} +namespace local/keep +any_of\\(most_recent\\(1\\), matching\\("b"\\)\\) +- +disabled`, "m"));
    expectOneLineError(badRule, 1, /--keep\.most_recent\.count: must be from 1 to 1000000/);
    expectOneLineError(badGrace, 1, /--untagged-grace "5 days": expected a duration/);
    expect(dry.stdout).toMatch(/^OUTCOME +WHAT +NAME +REASON +RULE$/m);
    expect(dry.stdout).toMatch(
      /^would delete +tag +local\/keep\/app:a +not kept +keep\.any_of\.rules\[0\]\.most_recent: not among the 1 most recently pushed tags; keep\.any_of\.rules\[1\]\.matching: name does not match "b"$/m,
    );
    expect(dry.stdout).toMatch(/Dry run, nothing was deleted: 1 repositories, 3 tags examined; would delete 1 tags and 0 manifests/);
    // Disabled: a real run deletes nothing; enabled, it deletes what the dry run listed.
    expect((await cli(["retention", "run", "local/keep"])).stdout).toMatch(/1 repositories under a disabled policy/);
    expect((await cli(["retention", "set", "local/keep", "--no-disabled"])).stdout).toMatch(/^Changed the retention policy of namespace local\/keep/);
    const real = json<{ deletions: { outcome: string; name: string; reason: string }[]; stats: { tagsDeleted: number } }>(
      await cli(["retention", "run", "local/keep/app", "-o", "json"]),
    );
    expect(real.deletions.map((d) => [d.outcome, d.name, d.reason])).toEqual([["deleted", "local/keep/app:a", "not kept"]]);
    expect(real.stats.tagsDeleted).toBe(1);
    expect(((await registry.req("GET", "/v2/local/keep/app/tags/list")).json as { tags: string[] }).tags).toEqual(["b", "c"]);
    expect((await cli(["retention", "delete", "local/keep"])).stdout).toBe(`Deleted the retention policy of namespace local/keep (${set.id}).\n`);
    expectOneLineError(await cli(["retention", "delete", "local/keep"]), 1, /has no retention policy of its own/);
  });

  it("webhooks: add with a piped secret, test, the delivery log after a push, disable, delete; bad input is a usage error", async () => {
    const receiver = await WebhookReceiver.start();
    try {
      await registry.pushImage("local/hooks/app", "0");
      const secret = "cli-webhook-secret-0123456789";
      const added = json<{ id: string; scopeName: string; url: string; eventTypes: string[]; enabled: boolean; secret?: string }>(
        await cli(["webhooks", "add", "local/hooks", receiver.url, "--types", "image.pushed", "--secret-stdin", "-o", "json"], { input: `${secret}\n` }),
      );
      expect(added).toMatchObject({ scopeName: "local/hooks", url: receiver.url, eventTypes: ["dev.artifact.image.pushed"], enabled: true });
      expect(added.secret).toBeUndefined();
      const tested = await cli(["webhooks", "test", added.id]);
      expect(tested.code, tested.stderr).toBe(0);
      expect(tested.stdout).toMatch(/^Delivered: +yes\nStatus: +200\nTook: +\d+ ms\n$/);
      expect(verifiesWith(secret, receiver.requests[0]!)).toBe(true);

      const pushed = await registry.pushImage("local/hooks/app", "1");
      await eventually(() => receiver.accepted.length === 2, "the push delivered");
      const [table, log, listed] = await Promise.all([
        cli(["webhooks", "list", "local"]),
        cli(["webhooks", "deliveries", added.id, "--status", "delivered", "-o", "json"]),
        cli(["webhooks", "deliveries", added.id]),
      ]);
      expect(table.stdout).toMatch(new RegExp(`^${added.id} +local/hooks +${escape(receiver.url)} +image\\.pushed +yes +`, "m"));
      expect(json<{ deliveries: { subject: string; status: string; responseStatus: number }[] }>(log).deliveries).toEqual([
        expect.objectContaining({ subject: "local/hooks/app", status: "delivered", responseStatus: 200 }),
      ]);
      expect(listed.stdout).toMatch(/^ +\d+ +image\.pushed +local\/hooks\/app +delivered +1 +200 +/m);
      // A generated secret is shown once, and only then.
      const generated = await cli(["webhooks", "add", "local", receiver.url, "--disabled"]);
      expect(generated.stdout).toMatch(/^Added webhook \S+: events of local go to .*\nSigning secret \(shown once\): [0-9a-f]{64}\n$/);

      expect((await cli(["webhooks", "disable", added.id])).stdout).toBe(`Webhook ${added.id} (${receiver.url}) is disabled.\n`);
      await registry.pushImage("local/hooks/app", "2");
      // Shown in the events, never sent while disabled.
      const events = await cli(["events", "watch", "local/hooks", "--from", "0", "--no-follow", "--types", "image.pushed", "-o", "ndjson"]);
      expect(events.code, events.stderr).toBe(0);
      const lines = events.stdout
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as { type: string; tag: string; digest: string; actor: string });
      expect(lines.map((e) => [e.type, e.tag, e.actor])).toEqual([
        ["dev.artifact.image.pushed", "0", "admin"],
        ["dev.artifact.image.pushed", "1", "admin"],
        ["dev.artifact.image.pushed", "2", "admin"],
      ]);
      expect(lines[1]!.digest).toBe(pushed.digest);
      expect(receiver.accepted.length).toBe(2);

      const [badStatus, badFrom, noFrom, badScope, deep, bothSecrets] = await Promise.all([
        cli(["webhooks", "deliveries", added.id, "--status", "lost"]),
        cli(["events", "watch", "--from", "-1"]),
        cli(["events", "watch", "--no-follow"]),
        cli(["webhooks", "add", "local/nope", receiver.url]),
        cli(["webhooks", "list", "local/hooks/app"]),
        cli(["webhooks", "add", "local", receiver.url, "--secret-stdin", "--secret-file", "x"]),
      ]);
      expectOneLineError(badStatus, 1, /--status "lost": expected pending, delivered or failed/);
      expectOneLineError(badFrom, 1, /--from/);
      expectOneLineError(noFrom, 1, /--no-follow needs --from/);
      expectOneLineError(badScope, 2, /namespace "local\/nope" not found/);
      expectOneLineError(deep, 1, /expected <registry>\[\/<namespace>\]/);
      expectOneLineError(bothSecrets, 1, /not both/);
      expect((await cli(["webhooks", "delete", added.id])).stdout).toBe(`Deleted webhook ${added.id} (${receiver.url}).\n`);
      expectOneLineError(await cli(["webhooks", "test", added.id]), 2, /not found/);
    } finally {
      await receiver.stop();
    }
  });

  it("events watch follows: a push after it started is printed, and an interrupt ends it with status 0", async () => {
    const before = await cli(["events", "watch", "local/team", "--from", "0", "--no-follow", "-o", "ndjson"]);
    const last =
      before.stdout
        .trimEnd()
        .split("\n")
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { position: number }).position)
        .pop() ?? 0;
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, "events", "watch", "local/team", "--from", String(last)], {
      cwd: packageRoot,
      env: userEnv(home),
    });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.on("close", resolve));
    try {
      await registry.pushImage("local/team/watched", "live");
      await eventually(() => stdout.includes("local/team/watched:live"), "the watch printed the push");
      expect(stdout).toMatch(/^ +\d+ {2}\S+Z {2}image\.pushed +local\/team\/watched:live sha256:[0-9a-f]+ +by admin\n$/);
    } finally {
      child.kill("SIGINT");
    }
    expect(await closed).toBe(0);
  });

  it("gc --dry-run: a table of what would be freed, the grace period named, nothing deleted", async () => {
    const blob = Buffer.from("an orphan layer nobody references");
    const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;
    const upload = await adminFetch(`${server.httpUrl}/v2/local/team/app/blobs/uploads/?digest=${digest}`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: blob,
    });
    expect(upload.status).toBe(201);
    await server.database.db.execute(`update blobs set push_time = now() - interval '2 hours' where digest = '${digest}'`);
    const run = await cli(["gc", "--dry-run"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^Garbage collection, dry run: nothing was deleted\.$/m);
    expect(run.stdout).toMatch(/^WHAT +WOULD DELETE +SIZE$/m);
    expect(run.stdout).toMatch(/^unreferenced blobs +1 +33 B$/m);
    expect(run.stdout).toContain("grace period (GC_GRACE_MS)");
    expect(run.stdout).toContain(`  ${digest}`);
    expect((await registry.req("HEAD", `/v2/local/team/app/blobs/${digest}`)).status).toBe(200);
  });

  it("tokens: create prints the secret once (stdout alone), list shows it, revoke ends it (exit 3 after)", async () => {
    const created = await cli(["tokens", "create", "cli-test", "--ttl", "1d"]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^art_\S+\n$/);
    expect(created.stderr).toMatch(/shown this once/);
    expect(created.stderr).toMatch(/^Expires: +in (23 hours|1 day)$/m);
    const secret = created.stdout.trim();
    const listed = await cli(["tokens", "list"]);
    expect(listed.stdout).toMatch(/^[0-9a-f-]{36} +cli-test +admin +active +(just now|\d+ seconds ago) +in (23 hours|1 day) +never$/m);
    expect(listed.stdout).not.toContain(secret);

    const asRobot = { ARTIFACT_TOKEN: secret };
    expect((await cli(["whoami"], { env: asRobot })).stdout).toMatch(/^Signed in with: token \(from ARTIFACT_TOKEN\)$/m);
    const revoked = json<{ status: string; name: string }>(await cli(["tokens", "revoke", "cli-test", "-o", "json"]));
    expect(revoked).toMatchObject({ name: "cli-test", status: "revoked" });
    expectOneLineError(await cli(["whoami"], { env: asRobot }), 3, /unauthenticated/);
    expectOneLineError(await cli(["tokens", "revoke", "cli-test"]), 2, /no active token named "cli-test"/);
  });

  it("exit statuses: 3 for a role that does not allow it, 1 for input the server refuses, 4 for a conflict", async () => {
    const adminIdentity = identityClients(server.httpUrl, ADMIN_TOKEN);
    const reader = await createAccount(adminIdentity, server.httpUrl, { robot: true });
    const local = (await admin.registries.listRegistries({ query: "local" })).registries.find((r) => r.name === "local")!;
    await bindRole(adminIdentity, reader.id, "reader", { registryId: local.id });
    const asReader = { env: { ARTIFACT_TOKEN: reader.token } };
    const [reads, collects, untags, badName, taken] = await Promise.all([
      cli(["tags", "list", "local/team/app"], asReader),
      cli(["gc", "--dry-run"], asReader),
      cli(["untag", "local/team/app:1.0"], asReader),
      cli(["registries", "create", "Not_A_Name"]),
      cli(["registries", "create", "local"]),
    ]);
    expect(reads.code, reads.stderr).toBe(0);
    expectOneLineError(collects, 3, /permission denied/);
    expectOneLineError(untags, 3, /permission denied/);
    expectOneLineError(badName, 1, /invalid argument: registry\.name/);
    expectOneLineError(taken, 4, /already exists/);
  });

  it("handles a reader that goes away: artifact tags list … | head -1 exits quietly", async () => {
    const reg = await admin.registries.createRegistry({ registry: { name: "bulk", kind: RegistryKind.REMOTE, url: "http://127.0.0.1:9" } });
    const ns = await admin.namespaces.createNamespace({ namespace: { registryId: reg.id, name: "ns" } });
    const repo = await admin.repositories.createRepository({ repository: { namespaceId: ns.id, name: "many" } });
    // ~500 KB of JSON: far more than a pipe holds, so writes go on after head has gone.
    await server.database.db.insert(tagsTable).values(
      Array.from({ length: 1500 }, (_, i) => ({
        repositoryId: repo.id,
        name: `t${i}`,
        digest: `sha256:${i.toString(16).padStart(64, "0")}`,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        sizeBytes: 1000 + i,
      })),
    );
    const run = await new Promise<Run>((resolve) => {
      const child = spawn("bash", ["-o", "pipefail", "-c", `"$NODE" --import tsx "$MAIN" tags list bulk/ns/many --all -o json | head -1`], {
        cwd: packageRoot,
        env: userEnv(home, { NODE: process.execPath, MAIN }),
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
    expect(run).toEqual({ code: 0, stdout: "{\n", stderr: "" });
  });

  describe.skipIf(!haveRegistry)("REMOTE registries against a CNCF Distribution", () => {
    let upstream: Distribution;
    let privateUpstream: Distribution;
    const APPS = ["proj/app-0", "proj/app-1", "proj/app-2"];

    beforeAll(async () => {
      upstream = await startDistribution();
      const image = await smallImage("cli");
      await seedRepositories(upstream, image, { repos: APPS, tags: ["1.0", "latest"] });
      // A repository with a blob and no manifest: the catalog lists it, its tag list is 404.
      const res = await fetch(`${upstream.url}/v2/proj/blobs-only/blobs/uploads/?mount=${image.blobs[0]!.digest}&from=${APPS[0]}`, { method: "POST" });
      expect(res.status).toBe(201);
      privateUpstream = await startDistribution({ auth: "basic" });
    });
    afterAll(async () => {
      await upstream?.stop();
      await privateUpstream?.stop();
    });

    it("create (the service's URL before the command, the upstream's after it), edit with a mask, show, delete", async () => {
      const created = json(
        await cli(["--url", server.httpUrl, "registries", "create", "edited", "--url", upstream.url, "--description", "first", "-o", "json"]),
      );
      expect(created).toMatchObject({ name: "edited", kind: "remote", url: upstream.url, description: "first", public: false, hasCredential: false });
      const tagsOnly = json(await cli(["registries", "edit", "edited", "--sync-tags", "latest|1\\..*", "--public", "-o", "json"]));
      expect(tagsOnly).toMatchObject({ public: true, description: "first", syncFilter: { repositoryPrefix: "", tagPattern: "latest|1\\..*" } });
      // The filter is one field of the mask: the half not given is kept.
      const withPrefix = await cli(["registries", "edit", "edited", "--sync-prefix", "proj/", "--description", "second"]);
      expect(withPrefix.stdout).toMatch(/^Updated description, sync_filter of registry edited\.$/m);
      const [shown, nothing, refused] = await Promise.all([
        cli(["registries", "show", "edited"]),
        cli(["registries", "edit", "edited"]),
        cli(["registries", "edit", "edited", "--sync-tags", "(a)\\1"]),
      ]);
      expect(shown.stdout).toMatch(/^Sync filter: +repositories proj\/\*, tags \/latest\|1\\\.\.\*\/$/m);
      expect(shown.stdout).toMatch(/^Public: +yes/m);
      expect(shown.stdout).toMatch(/^Description: +second$/m);
      expectOneLineError(nothing, 1, /nothing to change/);
      expectOneLineError(refused, 1, /tag_pattern/);
      expect((await cli(["registries", "delete", "edited"])).stdout).toBe("Deleted registry edited.\n");
      expectOneLineError(await cli(["registries", "delete", "edited"]), 2, /registry "edited" not found/);
    });

    it("ping: exit 0 with a reachable upstream, 4 with one that does not answer", async () => {
      await admin.registries.createRegistry({ registry: { name: "mirror", kind: RegistryKind.REMOTE, url: upstream.url } });
      await admin.registries.createRegistry({ registry: { name: "gone", kind: RegistryKind.REMOTE, url: "http://127.0.0.1:9" } });
      const [ok, down] = await Promise.all([cli(["registries", "ping", "mirror"]), cli(["registries", "ping", "gone", "-o", "json"])]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/^Reachable: +yes, HTTP 200 in \d+ ms$/m);
      expect(ok.stdout).toMatch(/^Access: +yes \(anonymous\)$/m);
      expect(down.code).toBe(4);
      expect(JSON.parse(down.stdout)).toMatchObject({ registry: "gone", reachable: false, authenticated: false, status: 0 });
    });

    it("an upstream credential comes from stdin, is stored write-only, and ping shows whether it is taken", async () => {
      const { username, password } = privateUpstream.credentials!;
      const create = (name: string, secret: string) =>
        cli(["--url", server.httpUrl, "registries", "create", name, "--url", privateUpstream.url, "--username", username, "--password-stdin", "-o", "json"], {
          input: `${secret}\n`,
        });
      const [good, bad] = await Promise.all([create("private", password), create("private-wrong", "not-the-password")]);
      expect(json(good)).toMatchObject({ name: "private", hasCredential: true });
      expect(good.stdout + good.stderr).not.toContain(password);
      expect(json(bad)).toMatchObject({ hasCredential: true });
      const [ok, refused] = await Promise.all([cli(["registries", "ping", "private"]), cli(["registries", "ping", "private-wrong"])]);
      expect(ok.code, ok.stdout + ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/^Access: +yes \(basic\)$/m);
      expect(refused.code).toBe(4);
      expect(refused.stdout).toMatch(/^Access: +refused \(basic\)$/m);
      const cleared = json(await cli(["registries", "edit", "private-wrong", "--clear-credential", "-o", "json"]));
      expect(cleared).toMatchObject({ hasCredential: false });
    });

    it("sync without a terminal: progress lines and failures on stderr, the summary on stdout; then JSON and NDJSON", async () => {
      const run = await cli(["registries", "sync", "mirror"]);
      expect(run.code, run.stderr).toBe(0);
      const lines = run.stderr.trim().split("\n");
      expect(lines).toContainEqual(expect.stringMatching(/^sync: \d\/\d repositories done, tags \+\d+ ~0 -0, [01] errors?$/));
      expect(lines).toContainEqual(expect.stringMatching(/^sync: proj\/blobs-only: .+/));
      expect(lines.at(-1)).toBe("sync: done: 4 repositories found, 3 synced, tags +6 ~0 -0, 1 error");
      expect(run.stderr).not.toContain("\r");
      expect(run.stdout).toMatch(/^Repositories: 4 found, 3 synced, 1 failed$/m);
      expect(run.stdout).toMatch(/^Tags: +\+6 ~0 -0 \(added, updated, removed\)$/m);
      expect(run.stdout).toMatch(/^FAILED REPOSITORY +ERROR\nproj\/blobs-only +\S/m);

      const again = json(await cli(["registries", "sync", "mirror", "-o", "json", "--quiet"]));
      expect(again).toMatchObject({ registry: "mirror", done: true, repositoriesFound: 4, repositoriesSynced: 3, tagsAdded: 0, errors: 1, error: null });
      const ndjson = await cli(["registries", "sync", "mirror", "-o", "ndjson"]);
      expect(ndjson.stderr).toBe("");
      const messages = ndjson.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { done: boolean; repository: string | null });
      expect(messages).toHaveLength(5);
      expect(messages.at(-1)).toMatchObject({ done: true, repository: null });
      expect(new Set(messages.slice(0, -1).map((m) => m.repository))).toEqual(new Set([...APPS, "proj/blobs-only"]));

      const [synced, pulled, hosted] = await Promise.all([
        cli(["tags", "list", "mirror/proj/app-1", "--sort", "name"]),
        // Through the pull-through cache.
        cli(["inspect", "mirror/proj/app-1:latest", "-o", "json"]),
        cli(["registries", "sync", "local"]),
      ]);
      expect(
        synced.stdout
          .trim()
          .split("\n")
          .slice(1)
          .map((l) => l.split(/\s+/)[0]),
      ).toEqual(["1.0", "latest"]);
      expect(json(pulled)).toMatchObject({ kind: "image", layers: [{}] });
      expectOneLineError(hosted, 4, /failed precondition: .*HOSTED/);
    });

    it.skipIf(!haveScript)("sync on a terminal: a bar redrawn in place on stderr", async () => {
      const run = await onTerminal(home, ["registries", "sync", "mirror", "-o", "json"]);
      expect(run.code, run.stdout).toBe(0);
      // Each frame starts by going back to the line's start and clearing it.
      const frames = run.stdout.split("\r\x1b[2K");
      expect(frames.length).toBeGreaterThan(1);
      expect(frames.at(-1)).toMatch(/^\[=+\] 4\/4 repositories {2}tags \+0 ~0 -0 {2}1 error/);
      expect(run.stdout).toContain("sync: done: 4 repositories found, 3 synced");
    });
  });
});
