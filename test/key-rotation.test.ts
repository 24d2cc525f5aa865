// Rotating SECRET_KEY end to end, on each database: credentials sealed under key A keep
// authenticating against a real Basic-auth upstream (Distribution) once the service runs with
// SECRET_KEY=B and SECRET_KEY_PREVIOUS=A; `npm run reseal`, run as an operator runs it (a process),
// moves them under B without moving an etag; then B alone works; and with an unrelated key C every
// way in (PingRegistry, SyncRegistry, ImageService, /v2/) says FAILED_PRECONDITION naming the
// registry (503 UNAVAILABLE on /v2/), and the start-up log counts them.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { Code, createClient } from "@connectrpc/connect";
import { sql } from "drizzle-orm";
import { createLogger } from "../src/log.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImageService } from "../gen/artifact/v1/image_pb.js";
import { RegistryKind, type Registry } from "../gen/artifact/v1/registry_pb.js";
import type { DatabaseConfig } from "../src/config.js";
import { resealCredentials } from "../src/key-rotation.js";
import { packageRoot } from "../src/paths.js";
import { keyId, Sealer, type Credential } from "../src/secrets.js";
import { startServer, type RunningServer } from "../src/server.js";
import { CredentialStore } from "../src/store/credentials.js";
import { WebhookService } from "../gen/artifact/v1/webhook_pb.js";
import { verifiesWith, WebhookReceiver } from "./support/webhook-receiver.js";
import { RegistryUpstreams } from "../src/upstream/registries.js";
import { catalogClients, expectCode, unique, type Clients } from "./support/clients.js";
import { createScratchDatabase, databaseKinds, postgresConfig } from "./support/database.js";
import { startDistribution, type Distribution } from "./support/distribution.js";
import { smallImage } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { removeWhenProcessEnds } from "./support/reaper.js";
import { seedRepositories } from "./support/registry-seed.js";
import { expectOciError, RegistryClient } from "./support/registry-client.js";
import { sealV1 } from "./support/sealing.js";
import { startTestServer, testConfig, transports, type TestServer } from "./support/server.js";
import { testUpstreamLimits } from "./support/upstream-settings.js";
import { AddressPolicy } from "../src/upstream/address-policy.js";

const ready = havePeers("test/key-rotation.test.ts", "docker-registry", "htpasswd");

const run = promisify(execFile);
const RESEAL = join(packageRoot, "src/cli/reseal.ts");

/** `npm run reseal` as a process: its exit code and output, whatever the code. */
async function reseal(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // Only what the test gives: never a database or key of the environment the tests run in.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(DATABASE_URL|DB_|SECRET_KEY|HTTP_|GRPC_|DATA_DIR)/.test(k)));
  return run(process.execPath, ["--import", "tsx", RESEAL, ...args], { cwd: packageRoot, env: { ...base, ...env }, timeout: 120_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );
}

const unopenable = (name: string) =>
  `registry "${name}": its stored credential cannot be opened with SECRET_KEY (the key changed?): put the old key in SECRET_KEY_PREVIOUS, or set the registry's credential again`;

describe("npm run reseal: usage and settings", () => {
  it("prints its usage on --help (exit 0) and refuses an unknown option (exit 2)", async () => {
    const help = await reseal({}, "--help");
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npm run reseal -- \[--dry-run\] \[--json\]/);
    const bad = await reseal({}, "--dry");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^reseal: Unknown option '--dry'/);
  });

  it("refuses a bad SECRET_KEY_PREVIOUS naming the entry, never its value (exit 2)", async () => {
    const bad = await reseal({ SECRET_KEY_PREVIOUS: `${randomBytes(32).toString("base64")},oops-SECRETVALUE` });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("SECRET_KEY_PREVIOUS: entry 2 of 2: expected 32 bytes");
    expect(bad.stderr).not.toContain("SECRETVALUE");
  });

  it.skipIf(!process.env.TEST_DATABASE_URL)("refuses to run without SECRET_KEY on PostgreSQL: nothing to seal under (exit 2)", async () => {
    const result = await reseal({ DATABASE_URL: process.env.TEST_DATABASE_URL!, SECRET_KEY_PREVIOUS: randomBytes(32).toString("hex") });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("SECRET_KEY is not set");
  });
});

describe.skipIf(!ready).each(databaseKinds())("SECRET_KEY rotation on %s", (kind) => {
  const [A, B, C] = [randomBytes(32), randomBytes(32), randomBytes(32)];
  const dir = mkdtempSync(join(tmpdir(), "artifact-keys-"));
  removeWhenProcessEnds(dir);
  // Two REMOTE registries on one Basic-auth upstream: one sealed by the service under A (v2), one
  // as the first release sealed it (v1, under A). Sorted by name, as every report lists them.
  const names = [unique("rot"), unique("rot-old")].sort();
  const [current, legacy] = names as [string, string];
  let upstream: Distribution;
  let database: DatabaseConfig;
  let dropDatabase: (() => Promise<void>) | undefined;
  let credential: Credential;
  let server: Booted | undefined;
  const ids: Record<string, string> = {};
  const etags: Record<string, string> = {};

  interface Booted {
    running: RunningServer;
    clients: Clients;
    v2: RegistryClient;
    images: ReturnType<typeof createClient<typeof ImageService>>;
    logged: { level: number; msg: string; registries?: string[] }[];
  }

  async function boot(secretKey: Buffer, previous: Buffer[] = []): Promise<Booted> {
    const logged: Booted["logged"] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (logged.push(JSON.parse(String(chunk)) as Booted["logged"][number]), done()) });
    const running = await startServer(testConfig(dir, { database, secretKey, previousSecretKeys: previous }), createLogger("info", sink));
    const url = `http://127.0.0.1:${running.http.port}`;
    const transport = transports["connect+json over HTTP/1.1"]!(url);
    server = { running, clients: catalogClients(transport), v2: new RegistryClient(url), images: createClient(ImageService, transport), logged };
    return server;
  }

  async function shutDown(): Promise<{ http: number; grpc: number }> {
    const ports = { http: server!.running.http.port, grpc: server!.running.grpc.port };
    await server!.running.close();
    server = undefined;
    return ports;
  }

  const cliEnv = (secretKey: Buffer, previous: Buffer[], ports: { http: number; grpc: number }) => ({
    SECRET_KEY: secretKey.toString("hex"),
    ...(previous.length > 0 ? { SECRET_KEY_PREVIOUS: previous.map((k) => k.toString("base64")).join(",") } : {}),
    DATA_DIR: dir,
    HTTP_PORT: String(ports.http),
    GRPC_PORT: String(ports.grpc),
    ...(database.kind === "postgres" ? { DATABASE_URL: database.url! } : {}),
  });

  const expectAuthenticated = async (s: Booted, name: string) =>
    expect(await s.clients.registries.pingRegistry({ id: ids[name]! }), name).toMatchObject({ reachable: true, authenticated: true, status: 200 });

  const sealedValues = async (s: Booted) => Object.fromEntries((await s.running.store.credentials.list()).map((c) => [c.name, c.sealed]));

  beforeAll(async () => {
    upstream = await startDistribution({ auth: "basic" });
    credential = { kind: "basic", ...upstream.credentials! };
    await seedRepositories(upstream, await smallImage(), { repos: ["team/app"], tags: ["v1"] });
    if (kind === "postgres") {
      const scratch = await createScratchDatabase();
      database = postgresConfig(scratch.url, 4);
      dropDatabase = () => scratch.drop();
    } else {
      // On disk: the reseal process opens it after the service has stopped.
      database = { kind: "pglite", dataDir: join(dir, "pglite") };
    }
  });

  afterAll(async () => {
    await server?.running.close();
    await upstream?.stop();
    await dropDatabase?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it("seals under SECRET_KEY as v2 naming its key, and authenticates upstream", async () => {
    const s = await boot(A);
    for (const name of names) {
      const created = await s.clients.registries.createRegistry({
        registry: { name, kind: RegistryKind.REMOTE, url: upstream.url, credential: { kind: { case: "basic", value: upstream.credentials! } } },
      });
      ids[name] = created.id;
    }
    // What a row written by the first release looks like.
    await s.running.database.db.execute(sql`update registries set credential_sealed = ${sealV1(A, credential)} where id = ${ids[legacy]!}`);
    const sealed = await sealedValues(s);
    expect(sealed[current]).toMatch(new RegExp(`^v2:${keyId(A)}:`));
    expect(sealed[legacy]).toMatch(/^v1:/);
    for (const name of names) {
      await expectAuthenticated(s, name);
      etags[name] = (await s.clients.registries.getRegistry({ id: ids[name]! })).etag;
    }
    expect(s.logged.filter((l) => l.msg.includes("stored credential"))).toEqual([]);
    await shutDown();
  });

  it("with SECRET_KEY=B and SECRET_KEY_PREVIOUS=A: both still authenticate (API and /v2/ pull); the log says they are not under B yet", async () => {
    const s = await boot(B, [A]);
    for (const name of names) {
      await expectAuthenticated(s, name);
      const pulled = await s.v2.req("GET", `/v2/${name}/team/app/manifests/v1`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } });
      expect(pulled.status, pulled.body.toString()).toBe(200);
    }
    expect(s.logged.filter((l) => l.msg.includes("stored credential"))).toEqual([
      expect.objectContaining({
        level: 30,
        msg: "2 stored credentials are not sealed under SECRET_KEY yet: `npm run reseal` re-seals them",
        registries: names,
      }),
    ]);
    if (kind === "pglite") {
      // The embedded database belongs to the running service: its lock keeps the command out.
      const refused = await reseal(cliEnv(B, [A], { http: s.running.http.port, grpc: s.running.grpc.port }));
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`the embedded database in ${join(dir, "pglite")} is in use by another artifact-service process (pid ${process.pid}`);
    }
  });

  it("npm run reseal: a dry run changes nothing, the run re-seals both under B keeping their etags, a second run finds them current", async () => {
    // PostgreSQL: while the service runs. PGlite: after it stopped (one process owns it).
    const ports = kind === "pglite" ? await shutDown() : { http: 0, grpc: 0 };
    const env = cliEnv(B, [A], ports);

    const dry = await reseal(env, "--dry-run");
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("(dry run: nothing changed)");
    expect(dry.stdout).toContain(`would re-seal:     2\n    ${current}\n    ${legacy}\n`);
    expect(dry.stdout).toContain(`key id ${keyId(B)}`);

    const real = await reseal(env, "--json");
    expect(real.code, real.stderr).toBe(0);
    expect(JSON.parse(real.stdout)).toEqual({ dryRun: false, keyId: keyId(B), resealed: names, alreadyCurrent: [], unopenable: [], contended: [] });

    const again = await reseal(env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain("re-sealed:     0\n  already current: 2\n  cannot be opened: 0\n");

    if (server) {
      // The running service's cached upstream clients follow the new sealed values.
      for (const name of names) await expectAuthenticated(server, name);
      await shutDown();
    }
  });

  it("with SECRET_KEY=B alone: both authenticate, are sealed under B, kept their etags, and nothing is logged about them", async () => {
    const s = await boot(B);
    const sealed = await sealedValues(s);
    for (const name of names) {
      expect(sealed[name]).toMatch(new RegExp(`^v2:${keyId(B)}:`));
      await expectAuthenticated(s, name);
      const registry: Registry = await s.clients.registries.getRegistry({ id: ids[name]! });
      expect({ etag: registry.etag, hasCredential: registry.hasCredential }).toEqual({ etag: etags[name], hasCredential: true });
    }
    expect(s.logged.filter((l) => l.msg.includes("stored credential"))).toEqual([]);
    await shutDown();
  });

  it("with SECRET_KEY=C alone: warned at start-up, FAILED_PRECONDITION naming the registry everywhere, 503 on /v2/; setting the credential again fixes it", async () => {
    const s = await boot(C);
    expect(s.logged.filter((l) => l.msg.includes("stored credential"))).toEqual([
      expect.objectContaining({
        level: 40,
        msg: `2 stored credentials cannot be opened with SECRET_KEY/SECRET_KEY_PREVIOUS: registries ${current}, ${legacy} (put the old key in SECRET_KEY_PREVIOUS, or set their credentials again)`,
        registries: names,
      }),
    ]);
    const secret = upstream.credentials!.password;
    for (const name of names) {
      const id = ids[name]!;
      const ping = await expectCode(s.clients.registries.pingRegistry({ id }), Code.FailedPrecondition);
      expect(ping.rawMessage).toBe(unopenable(name));
      const sync = async () => {
        for await (const progress of s.clients.registries.syncRegistry({ id })) expect.unreachable(`sync made progress: ${JSON.stringify(progress)}`);
      };
      expect((await expectCode(sync(), Code.FailedPrecondition)).rawMessage).toBe(unopenable(name));
      const image = await expectCode(s.images.getManifest({ repository: `${name}/team/app`, reference: "v1" }), Code.FailedPrecondition);
      expect(image.rawMessage).toBe(unopenable(name));
      for (const method of ["GET", "HEAD"]) {
        const pulled = await s.v2.req(method, `/v2/${name}/team/app/manifests/v1`);
        expect(pulled.status, pulled.body.toString()).toBe(503);
        if (method === "GET") expectOciError(pulled, 503, "UNAVAILABLE", unopenable(name));
        expect(pulled.body.toString()).not.toContain(secret);
      }
    }
    expect(JSON.stringify(s.logged)).not.toContain(secret);

    // The remedy the message names: give the registry its credential again (sealed under C).
    await s.clients.registries.updateRegistry({
      registry: { id: ids[current]!, credential: { kind: { case: "basic", value: upstream.credentials! } } },
      updateMask: { paths: ["credential"] },
    });
    await expectAuthenticated(s, current);

    const ports = await shutDown();
    const report = await reseal(cliEnv(C, [], ports));
    expect(report.code).toBe(1);
    expect(report.stdout).toContain(
      `already current: 1\n  cannot be opened: 1 (put their key in SECRET_KEY_PREVIOUS, or set their credentials again)\n    ${legacy}\n`,
    );
  });
});

describe.each(databaseKinds())("re-sealing against concurrent changes on %s", (kind) => {
  const [A, B] = [randomBytes(32), randomBytes(32)];
  const sealer = new Sealer({ sealing: B, previous: [A] });
  const credential: Credential = { kind: "token", token: "t0ken" };
  let server: TestServer;
  let clients: Clients;

  beforeAll(async () => {
    server = await startTestServer(kind, { config: { secretKey: B, previousSecretKeys: [A] } });
    clients = catalogClients(transports["connect+json over HTTP/1.1"]!(server.httpUrl));
  });
  afterAll(() => server?.stop());

  async function remoteUnderA(): Promise<Registry> {
    const registry = await clients.registries.createRegistry({ registry: { name: unique("race"), kind: RegistryKind.REMOTE, url: "http://127.0.0.1:9" } });
    await server.database.db.execute(sql`update registries set credential_sealed = ${new Sealer({ sealing: A }).seal(credential)} where id = ${registry.id}`);
    return registry;
  }

  it("never overwrites a credential that UpdateRegistry changed after the value was read", async () => {
    const registry = await remoteUnderA();
    let written: string | null = null;
    // The UpdateRegistry lands between the re-seal's read and its write.
    class Racing extends CredentialStore {
      override async replace(id: string, from: string, to: string): Promise<boolean> {
        if (id === registry.id && written === null) {
          await clients.registries.updateRegistry({
            registry: { id, credential: { kind: { case: "token", value: "n3w-token" } } },
            updateMask: { paths: ["credential"] },
          });
          written = await this.get(id);
        }
        return super.replace(id, from, to);
      }
    }
    const report = await resealCredentials(new Racing(server.database.db), sealer, { dryRun: false });
    expect(report.alreadyCurrent).toContain(registry.name);
    expect(report.resealed).not.toContain(registry.name);
    expect(written).toMatch(new RegExp(`^v2:${keyId(B)}:`));
    expect(await server.store.credentials.get(registry.id)).toBe(written);
    expect(sealer.open(written!)).toEqual({ kind: "token", token: "n3w-token" });
  });

  it("replaces a sealed value only while it is the one read, and moves no etag or update time", async () => {
    const registry = await remoteUnderA();
    const store = server.store.credentials;
    const before = (await store.get(registry.id))!;
    expect(await store.replace(registry.id, "v2:00000000:c3RhbGU=", sealer.reseal(before)!)).toBe(false);
    expect(await store.get(registry.id)).toBe(before);
    const after = sealer.reseal(before)!;
    expect(await store.replace(registry.id, before, after)).toBe(true);
    expect(await store.get(registry.id)).toBe(after);
    const row = await clients.registries.getRegistry({ id: registry.id });
    expect({ etag: row.etag, updateTime: row.updateTime }).toEqual({ etag: registry.etag, updateTime: registry.updateTime });
  });

  it("re-seals a webhook's secret under SECRET_KEY too; deliveries sign with the same secret before and after", async () => {
    const receiver = await WebhookReceiver.start();
    try {
      const hosted = await clients.registries.createRegistry({ registry: { name: unique("hook"), kind: RegistryKind.HOSTED } });
      const webhooks = createClient(WebhookService, transports["connect+json over HTTP/1.1"]!(server.httpUrl));
      const secret = "rotated-webhook-secret-0123456789";
      const webhook = await webhooks.createWebhook({ webhook: { registryId: hosted.id, url: receiver.url, secret } });
      await server.database.db.execute(sql`update webhooks set secret_sealed = ${new Sealer({ sealing: A }).sealText(secret)} where id = ${webhook.id}`);
      expect((await webhooks.testWebhook({ id: webhook.id })).delivered).toBe(true);
      const report = await resealCredentials(server.store.credentials, sealer, { dryRun: false });
      const name = `webhook ${webhook.id} (${hosted.name})`;
      expect(report.resealed).toContain(name);
      expect(await server.store.credentials.get(webhook.id)).toMatch(new RegExp(`^v2:${keyId(B)}:`));
      expect((await webhooks.testWebhook({ id: webhook.id })).delivered).toBe(true);
      expect(receiver.requests.map((r) => verifiesWith(secret, r))).toEqual([true, true]);
      expect((await webhooks.getWebhook({ id: webhook.id })).etag).toBe(webhook.etag);
      expect((await resealCredentials(server.store.credentials, sealer, { dryRun: false })).alreadyCurrent).toContain(name);
    } finally {
      await receiver.stop();
    }
  });

  it("rebuilds a registry's upstream client when its sealed value changes, even at the same version", () => {
    const upstreams = new RegistryUpstreams(sealer, testUpstreamLimits(), new AddressPolicy());
    const row = { id: "r1", name: "r1", kind: "remote" as const, version: 3, url: "http://127.0.0.1:9", insecure: false };
    const underA = new Sealer({ sealing: A }).seal(credential);
    const first = upstreams.for({ ...row, credentialSealed: underA });
    expect(upstreams.for({ ...row, credentialSealed: underA })).toBe(first);
    expect(upstreams.for({ ...row, credentialSealed: sealer.reseal(underA)! })).not.toBe(first);
  });
});
