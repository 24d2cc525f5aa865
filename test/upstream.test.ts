// src/upstream against real Debian docker-registry (CNCF Distribution 2.8) processes in three auth
// modes (none, htpasswd Basic, token with an in-process token server), with images pushed by
// Debian's skopeo. Failure modes a real registry cannot be made to show (a hung server, malformed
// answers, 503s, redirects to another host, a self-signed certificate) use tiny local HTTP servers.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DomainError } from "../src/domain/errors.js";
import { AddressPolicy, parseAllowedNetworks } from "../src/upstream/address-policy.js";
import { parseChallenges } from "../src/upstream/challenge.js";
import { UpstreamClient } from "../src/upstream/client.js";
import { UpstreamClients } from "../src/upstream/clients.js";
import { verifyDigest } from "../src/domain/digest.js";
import { UpstreamError } from "../src/upstream/errors.js";
import type { UpstreamSettings } from "../src/upstream/settings.js";
import { scope, startDistribution, type Distribution } from "./support/distribution.js";
import { dockerSchema2Image, largeImage, layoutBlobPath, MediaType, multiPlatformIndex, smallImage, type BuiltImage } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { freePort } from "./support/postgres.js";
import { pushImage } from "./support/skopeo.js";
import { testUpstreamLimits, type UpstreamOverrides } from "./support/upstream-settings.js";

const run = promisify(execFile);
const ready = havePeers("test/upstream.test.ts", "skopeo", "docker-registry", "htpasswd", "openssl");

const FAST_RETRY = { attempts: 3, baseDelayMs: 10, maxDelayMs: 1_000 };
const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

// Every upstream here listens on loopback, which the default address policy refuses (test/upstream-fence.test.ts).
const LOOPBACK = new AddressPolicy({ allowed: parseAllowedNetworks("127.0.0.0/8").networks });

const open: UpstreamClient[] = [];
/** A client of `settings.url` that may reach loopback, retrying fast; `timeouts` and `retry` override. */
function client(settings: UpstreamSettings & UpstreamOverrides, options: { now?: () => number; random?: () => number } = {}): UpstreamClient {
  const { timeouts, retry, ...registry } = settings;
  const limits = testUpstreamLimits({ timeouts, retry: { ...FAST_RETRY, ...retry } });
  const c = new UpstreamClient(registry, { policy: LOOPBACK, limits, ...options });
  open.push(c);
  return c;
}
afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
});

/** The DomainError a promise rejects with (fails the test if it resolves or throws something else). */
async function failure(p: Promise<unknown>): Promise<UpstreamError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected a rejection").toBeInstanceOf(DomainError);
  return err as UpstreamError;
}

async function drain(body: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Consumes `body` through verifyDigest(digest); resolves with the byte count. */
async function verified(body: NodeJS.ReadableStream, digest: string, size?: number): Promise<number> {
  let n = 0;
  await pipeline(
    body,
    verifyDigest(digest, { size }),
    new Writable({
      write(chunk: Buffer, _e, done) {
        n += chunk.length;
        done();
      },
    }),
  );
  return n;
}

// ---- tiny local servers for failure modes ----

interface Tiny {
  url: string;
  host: string;
  requests: { method: string; url: string; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

async function tiny(
  handler: (req: IncomingMessage, res: ServerResponse, n: number) => void,
  host = "127.0.0.1",
  server: Server = createServer(),
  scheme: "http" | "https" = "http",
): Promise<Tiny> {
  const requests: Tiny["requests"] = [];
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    handler(req, res, requests.length);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${scheme}://${host}:${port}`,
    host: `${host}:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

// ---- fixtures on the real registries ----

interface Pushed {
  small: BuiltImage;
  index: BuiltImage;
  docker: BuiltImage;
}

async function pushAll(reg: Distribution): Promise<Pushed> {
  const [small, index, docker] = await Promise.all([smallImage(), multiPlatformIndex(), dockerSchema2Image()]);
  await Promise.all([pushImage(small, reg, "team/app", "v1"), pushImage(index, reg, "team/multi", "v1"), pushImage(docker, reg, "team/docker", "v1")]);
  return { small, index, docker };
}

/** Cheap repositories and tags: mount the image's blobs from `from`, then PUT its manifest. */
async function tagCheaply(reg: Distribution, image: BuiltImage, from: string, to: string, tag: string): Promise<void> {
  const scopes = [scope.push(to), scope.pull(from)];
  for (const b of image.blobs) {
    const res = await reg.fetch(`/v2/${to}/blobs/uploads/?mount=${b.digest}&from=${from}`, { method: "POST", scopes });
    await res.arrayBuffer();
    expect(res.status).toBe(201);
  }
  const res = await reg.fetch(`/v2/${to}/manifests/${tag}`, { method: "PUT", body: image.bytes, headers: { "content-type": image.mediaType }, scopes });
  await res.arrayBuffer();
  expect(res.status).toBe(201);
}

describe.skipIf(!ready)("challenge parsing", () => {
  it("reads several challenges, quoted commas and escapes", () => {
    expect(
      parseChallenges([
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push repository:c:pull", error="insufficient_scope"',
        'Negotiate abc==, Basic realm="x, \\"y\\"", charset=UTF-8',
      ]),
    ).toEqual([
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.example/token",
          service: "registry.example",
          scope: "repository:a/b:pull,push repository:c:pull",
          error: "insufficient_scope",
        },
      },
      { scheme: "negotiate", params: { "": "abc==" } },
      { scheme: "basic", params: { realm: 'x, "y"', charset: "UTF-8" } },
    ]);
  });
});

describe.skipIf(!ready).each(["none", "basic", "token"] as const)("reads from docker-registry with auth %s", (mode) => {
  let reg: Distribution;
  let images: Pushed;
  let c: UpstreamClient;

  beforeAll(async () => {
    reg = await startDistribution({ auth: mode });
    images = await pushAll(reg);
    c = client({ url: reg.url, credential: reg.credentials && { kind: "basic", ...reg.credentials } });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("ping says the registry answers and the credential works", async () => {
    const p = await c.ping();
    expect(p).toMatchObject({
      reachable: true,
      authenticated: true,
      status: 200,
      authScheme: mode === "none" ? "none" : mode === "basic" ? "basic" : "bearer",
    });
    expect(p.rttMs).toBeGreaterThan(0);
    expect(p.message).toContain(reg.host);
  });

  it("serves OCI manifests, OCI indexes and Docker schema2 manifests byte for byte, by tag and by digest", async () => {
    const cases: [string, BuiltImage][] = [
      ["team/app", images.small],
      ["team/multi", images.index],
      ["team/docker", images.docker],
    ];
    for (const [repo, image] of cases) {
      const byTag = await c.getManifest(repo, "v1");
      expect(byTag.bytes!.equals(image.bytes)).toBe(true);
      expect(byTag).toMatchObject({ digest: image.digest, mediaType: image.mediaType, size: image.size });
      const byDigest = await c.getManifest(repo, image.digest);
      expect(byDigest.bytes!.equals(image.bytes)).toBe(true);
      for (const m of image.manifests) {
        const child = await c.getManifest(repo, m.digest);
        expect(child.bytes!.equals(m.bytes)).toBe(true);
        expect(child.mediaType).toBe(m.mediaType);
      }
    }
    expect(images.index.mediaType).toBe(MediaType.ociIndex);
    expect(images.docker.mediaType).toBe(MediaType.dockerManifest);
  });

  it("HEAD gives digest, media type and size without the bytes", async () => {
    const head = await c.getManifest("team/multi", "v1", { method: "HEAD" });
    expect(head).toEqual({ digest: images.index.digest, mediaType: MediaType.ociIndex, size: images.index.size });
    const byDigest = await c.getManifest("team/docker", images.docker.digest, { method: "HEAD" });
    expect(byDigest).toEqual({ digest: images.docker.digest, mediaType: MediaType.dockerManifest, size: images.docker.size });
  });

  it("streams blobs whole (verified) and by range (206 + Content-Range)", async () => {
    const layer = images.small.manifests[0]!.layers[0]!;
    const file = await readFile(layer.path);
    const whole = await c.getBlob("team/app", layer.digest);
    expect(whole.status).toBe(200);
    expect(whole.size).toBe(layer.size);
    expect(whole.digest).toBe(layer.digest);
    expect(await verified(whole.body, layer.digest, layer.size)).toBe(layer.size);

    const part = await c.getBlob("team/app", layer.digest, { range: { start: 100, end: 1099 } });
    expect(part.status).toBe(206);
    expect(part.size).toBe(1000);
    expect(part.contentRange).toEqual({ start: 100, end: 1099, total: layer.size });
    expect((await drain(part.body)).equals(file.subarray(100, 1100))).toBe(true);

    const tail = await c.getBlob("team/app", layer.digest, { range: { start: layer.size - 10 } });
    expect(tail.contentRange).toEqual({ start: layer.size - 10, end: layer.size - 1, total: layer.size });
    expect((await drain(tail.body)).equals(file.subarray(layer.size - 10))).toBe(true);

    const beyond = await failure(c.getBlob("team/app", layer.digest, { range: { start: layer.size + 10 } }));
    expect(beyond).toMatchObject({ kind: "invalid-argument", reason: "range-mismatch", status: 416 });
  });

  it("lists tags and the catalog", async () => {
    expect(await c.listTags("team/app")).toEqual({ name: "team/app", tags: ["v1"] });
    expect((await c.catalog()).repositories).toEqual(["team/app", "team/docker", "team/multi"]);
  });

  it("unknown repository, tag and blob are not-found naming what was asked", async () => {
    const tag = await failure(c.getManifest("team/app", "nope"));
    expect(tag).toMatchObject({ kind: "not-found", reason: "manifest-unknown", status: 404 });
    expect(tag.message).toContain("team/app:nope");
    expect(tag.message).toContain(reg.host);
    const head = await failure(c.getManifest("team/app", "nope", { method: "HEAD" }));
    expect(head).toMatchObject({ kind: "not-found", reason: "manifest-unknown" });
    const blob = await failure(c.getBlob("team/app", `sha256:${"0".repeat(64)}`));
    expect(blob).toMatchObject({ kind: "not-found", reason: "blob-unknown" });
    const repo = await failure(c.listTags("team/none"));
    expect(repo).toMatchObject({ kind: "not-found", reason: "name-unknown" });
    expect(repo.message).toContain("repository team/none");
  });

  it("bad input is refused before any request", async () => {
    expect(await failure(c.getManifest("Team/App", "v1"))).toMatchObject({ kind: "invalid-argument" });
    expect(await failure(c.getManifest("team/app", "../../etc"))).toMatchObject({ kind: "invalid-argument" });
    expect(await failure(c.getBlob("team/app", "sha256:abc"))).toMatchObject({ kind: "invalid-argument" });
    expect(await failure(c.getBlob("team/app", images.small.manifests[0]!.config.digest, { range: { start: 5, end: 2 } }))).toMatchObject({
      kind: "invalid-argument",
      reason: "range-mismatch",
    });
  });

  if (mode !== "none") {
    it("a wrong password is unauthenticated, and the password appears nowhere", async () => {
      const password = "wrong-password-123";
      const wrong = client({ url: reg.url, credential: { kind: "basic", username: reg.credentials!.username, password } });
      const err = await failure(wrong.getManifest("team/app", "v1"));
      expect(err.kind).toBe("unauthenticated");
      expect(err.message).toContain(reg.host);
      expect(err.message).toMatch(/rejected the registry's credential/);
      expect(JSON.stringify({ m: err.message, s: err.stack })).not.toContain(password);
      const ping = await wrong.ping();
      expect(ping).toMatchObject({ reachable: true, authenticated: false, status: 401 });
    });

    it("no credential is unauthenticated and says one is needed", async () => {
      const anon = client({ url: reg.url });
      const err = await failure(anon.getManifest("team/app", "v1"));
      expect(err.kind).toBe("unauthenticated");
      expect(err.message).toMatch(/requires credentials/);
      expect(await anon.ping()).toMatchObject({ reachable: true, authenticated: mode === "token" });
    });
  }

  if (mode === "basic") {
    it("a token credential cannot answer a Basic challenge, and says so", async () => {
      const err = await failure(client({ url: reg.url, credential: { kind: "token", token: "some-registry-token" } }).getManifest("team/app", "v1"));
      expect(err.kind).toBe("unauthenticated");
      expect(err.message).toMatch(/asks for Basic authentication/);
      expect(err.message).not.toContain("some-registry-token");
    });
  }

  if (mode === "token") {
    it("asks the token service once per scope and reuses the token until it expires", async () => {
      const ts = reg.tokenServer!;
      let clock = Date.now();
      const cached = client({ url: reg.url, credential: { kind: "basic", ...reg.credentials! } }, { now: () => clock });
      const before = ts.requests.length;
      await cached.ping();
      for (let i = 0; i < 3; i++) await cached.getManifest("team/app", "v1");
      await cached.getManifest("team/app", images.small.digest, { method: "HEAD" });
      await drain((await cached.getBlob("team/app", images.small.manifests[0]!.config.digest)).body);
      await cached.listTags("team/app");
      await cached.catalog();
      await cached.catalog();
      const asked = ts.requests.slice(before);
      expect(asked.map((r) => r.scopes)).toEqual([[], [scope.pull("team/app")], [scope.catalog]]);
      expect(asked.every((r) => r.user === reg.credentials!.username && r.status === 200)).toBe(true);

      // Many callers at once for a new scope: one token request.
      const n = ts.requests.length;
      await Promise.all(Array.from({ length: 5 }, () => cached.getManifest("team/multi", "v1")));
      expect(ts.requests.slice(n).map((r) => r.scopes)).toEqual([[scope.pull("team/multi")]]);

      // Past expires_in (300 s here) minus the margin: a new token.
      clock += 295_000;
      const m = ts.requests.length;
      await cached.getManifest("team/app", "v1");
      expect(ts.requests.slice(m).map((r) => r.scopes)).toEqual([[scope.pull("team/app")]]);
    });

    it("a token credential is sent as the Bearer token itself, without the token service", async () => {
      const ts = reg.tokenServer!;
      const token = ts.issue([scope.pull("team/app"), scope.catalog], "robot");
      const before = ts.requests.length;
      const direct = client({ url: reg.url, credential: { kind: "token", token } });
      expect((await direct.getManifest("team/app", "v1")).digest).toBe(images.small.digest);
      expect((await direct.catalog()).repositories).toContain("team/app");
      expect(ts.requests.length).toBe(before);

      // Accepted, but not for this repository: permission-denied.
      const denied = await failure(direct.getManifest("team/multi", "v1"));
      expect(denied.kind).toBe("permission-denied");
      expect(denied.message).toContain("team/multi");
      expect(denied.message).not.toContain(token);
    });
  }
});

describe.skipIf(!ready)("docker-registry without auth: corruption, pagination, backpressure, a registry that dies", () => {
  let reg: Distribution;
  let c: UpstreamClient;
  let small: BuiltImage;
  let big: BuiltImage;
  const repos = Array.from({ length: 30 }, (_, i) => `page/repo-${String(i).padStart(2, "0")}`);
  const tags = Array.from({ length: 30 }, (_, i) => `t${String(i).padStart(2, "0")}`);

  beforeAll(async () => {
    [reg, small, big] = await Promise.all([startDistribution(), smallImage("pages"), largeImage(128, "upstream-backpressure")]);
    await Promise.all([pushImage(small, reg, "page/source", "v1"), pushImage(big, reg, "big/blob", "v1")]);
    for (const r of repos) await tagCheaply(reg, small, "page/source", r, "v1");
    for (const t of tags) await tagCheaply(reg, small, "page/source", "page/tags", t);
    c = client({ url: reg.url });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("a corrupted blob on the upstream's disk is caught by verifyDigest (data-loss)", async () => {
    const image = await smallImage("corrupt");
    await pushImage(image, reg, "corrupt/app", "v1");
    const layer = image.manifests[0]!.layers[0]!;
    await reg.corruptBlob(layer.digest, "flip");
    const blob = await c.getBlob("corrupt/app", layer.digest);
    expect(blob.status).toBe(200);
    const err = await failure(verified(blob.body, layer.digest, blob.size));
    expect(err).toMatchObject({ kind: "data-loss", reason: "digest-mismatch" });
    expect(err.message).toContain(layer.digest);
  });

  it("a corrupted manifest is data-loss, by digest and by tag", async () => {
    const image = await smallImage("corrupt-manifest");
    await pushImage(image, reg, "corrupt/manifest", "v1");
    await reg.corruptBlob(image.digest, "flip");
    const byDigest = await failure(c.getManifest("corrupt/manifest", image.digest));
    expect(byDigest).toMatchObject({ kind: "data-loss", reason: "digest-mismatch" });
    expect(byDigest.message).toContain(reg.host);
    // By tag the registry still names the right digest; the bytes disagree with it.
    expect(await failure(c.getManifest("corrupt/manifest", "v1"))).toMatchObject({ kind: "data-loss" });
  });

  it("pages through the catalog with small n, and caps n at 1000 (Distribution refuses more)", async () => {
    // One page of everything: n=5000 would be a 400 from Distribution unless capped.
    const everything = (await c.catalog({ n: 5000 })).repositories;
    expect(everything).toEqual(expect.arrayContaining([...repos, "page/source", "page/tags", "big/blob"]));
    expect(everything).toEqual([...everything].sort());

    const first = await c.catalog({ n: 7 });
    expect(first.repositories).toEqual(everything.slice(0, 7));
    expect(first.last).toBe(everything[6]);
    const second = await c.catalog({ next: first.next });
    expect(second.repositories).toEqual(everything.slice(7, 14));
    expect((await c.catalog({ n: 3, last: repos[27] })).repositories).toEqual([repos[28], repos[29], "page/source"]);

    const all: string[] = [];
    for await (const r of c.allRepositories({ pageSize: 7 })) all.push(r);
    expect(all).toEqual(everything);
    expect(new Set(all).size).toBe(all.length);
  });

  it("lists every tag even though Distribution ignores n for tags/list", async () => {
    const page = await c.listTags("page/tags", { n: 4 });
    expect([...page.tags].sort()).toEqual(tags);
    expect(page.next).toBeUndefined();
    const all: string[] = [];
    for await (const t of c.allTags("page/tags", { pageSize: 4 })) all.push(t);
    expect(all.sort()).toEqual(tags);
  });

  it("streams a 128 MiB blob with backpressure: a paused reader holds no more than a few buffers", async () => {
    const layer = big.manifests[0]!.layers[0]!;
    const blob = await c.getBlob("big/blob", layer.digest);
    expect(blob.size).toBe(layer.size);
    const iterator = blob.body[Symbol.asyncIterator]();
    const first = (await iterator.next()).value as Buffer;
    const rssBefore = process.memoryUsage().rss;
    await sleep(600);
    const grown = process.memoryUsage().rss - rssBefore;
    expect(grown).toBeLessThan(16 * 1024 * 1024);
    // Blob bodies arrive in buffers of 1 MiB (src/upstream/bulk.ts): a few of them at most.
    expect(blob.body.readableLength).toBeLessThanOrEqual(4 * 1024 * 1024);
    // The rest, verified: the first chunk goes in by hand.
    const verifier = verifyDigest(layer.digest, { size: layer.size });
    let n = 0;
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        n += chunk.length;
        done();
      },
    });
    verifier.write(first);
    await pipeline(
      (async function* () {
        for (let r = await iterator.next(); !r.done; r = await iterator.next()) yield r.value as Buffer;
      })(),
      verifier,
      sink,
    );
    expect(n).toBe(layer.size);
    expect(await readFile(layoutBlobPath(big, layer.digest)).then((b) => b.length)).toBe(layer.size);
  });

  it("a registry killed mid-blob and mid-catalog gives unavailable naming the host; the client recovers after a restart", async () => {
    const layer = big.manifests[0]!.layers[0]!;
    const blob = await c.getBlob("big/blob", layer.digest);
    const iterator = blob.body[Symbol.asyncIterator]();
    await iterator.next();

    const pages = c.allRepositories({ pageSize: 5 })[Symbol.asyncIterator]();
    for (let i = 0; i < 5; i++) await pages.next(); // the first page

    await reg.kill();
    const midBlob = await failure(
      (async () => {
        for (let r = await iterator.next(); !r.done; r = await iterator.next());
      })(),
    );
    expect(midBlob.kind).toBe("unavailable");
    expect(midBlob.message).toContain(reg.host);

    const midCatalog = await failure(pages.next());
    expect(midCatalog.kind).toBe("unavailable");
    expect(midCatalog.message).toContain(reg.host);
    expect(midCatalog.message).toMatch(/refused|closed/);

    await reg.restart();
    expect((await c.getManifest("page/source", "v1")).digest).toBe(small.digest);
  });
});

describe.skipIf(!ready)("failure modes of an upstream", () => {
  const servers: Tiny[] = [];
  const serve = async (handler: Parameters<typeof tiny>[0], host?: string) => {
    const s = await tiny(handler, host);
    servers.push(s);
    return s;
  };
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it("an unreachable port is unavailable naming the host (after retries)", async () => {
    const port = await freePort();
    const err = await failure(client({ url: `http://127.0.0.1:${port}` }).getManifest("team/app", "v1"));
    expect(err.kind).toBe("unavailable");
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.message).toMatch(/refused/);
    const ping = await client({ url: `http://127.0.0.1:${port}` }).ping();
    expect(ping).toMatchObject({ reachable: false, authenticated: false, status: 0 });
    expect(ping.message).toContain(`127.0.0.1:${port}`);
  });

  it("a host name that does not resolve is unavailable naming the host", async () => {
    const err = await failure(client({ url: "http://no-such-registry.invalid:5000" }).catalog());
    expect(err.kind).toBe("unavailable");
    expect(err.message).toContain("no-such-registry.invalid:5000");
    expect(err.message).toMatch(/does not resolve/);
  });

  it("a token service that is down is unavailable naming it and the upstream", async () => {
    const realmPort = await freePort();
    const challenger = await serve((_req, res) =>
      json(res, 401, {}, { "www-authenticate": `Bearer realm="http://127.0.0.1:${realmPort}/token",service="svc"` }),
    );
    const err = await failure(client({ url: challenger.url }).getManifest("team/app", "v1"));
    expect(err.kind).toBe("unavailable");
    expect(err.message).toContain(`token service 127.0.0.1:${realmPort} of upstream ${challenger.host}`);
  });

  it("an upstream that never answers is deadline-exceeded naming the host, and is not retried", async () => {
    const hung = await serve(() => {
      // never answer
    });
    const c = client({ url: hung.url, timeouts: { headersMs: 300 } });
    const err = await failure(c.getManifest("team/app", "v1"));
    expect(err.kind).toBe("deadline-exceeded");
    expect(err.message).toContain(hung.host);
    expect(err.message).toContain("300 ms");
    expect(hung.requests.length).toBe(1);
  });

  it("a body that stalls is deadline-exceeded while streaming", async () => {
    const stalls = await serve((_req, res) => {
      res.writeHead(200, { "content-length": "100" });
      res.write(Buffer.alloc(10));
    });
    const blob = await client({ url: stalls.url, timeouts: { bodyIdleMs: 300 } }).getBlob("team/app", `sha256:${"1".repeat(64)}`);
    const err = await failure(drain(blob.body));
    expect(err.kind).toBe("deadline-exceeded");
    expect(err.message).toContain(stalls.host);
  });

  it("malformed manifests, catalogs and tag lists are errors of kind unknown naming the upstream", async () => {
    const bad = await serve((req, res) => {
      if (req.url!.includes("/manifests/notjson")) {
        res.writeHead(200, { "content-type": MediaType.ociManifest });
        res.end("{ this is not json");
      } else if (req.url!.includes("/manifests/noconfig")) {
        res.writeHead(200, { "content-type": MediaType.ociManifest });
        res.end(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, layers: [] }));
      } else if (req.url!.includes("/manifests/schema1")) {
        res.writeHead(200, { "content-type": "application/vnd.docker.distribution.manifest.v1+prettyjws" });
        res.end(JSON.stringify({ schemaVersion: 1, name: "team/app", tag: "schema1", fsLayers: [] }));
      } else if (req.url!.startsWith("/v2/_catalog")) {
        json(res, 200, { repositories: "team/app" });
      } else if (req.url!.includes("/tags/list")) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"name":"team/app","tags":[');
      } else {
        json(res, 404, {});
      }
    });
    const c = client({ url: bad.url });
    for (const [p, what] of [
      [c.getManifest("team/app", "notjson"), /manifest team\/app:notjson.*not JSON/],
      [c.getManifest("team/app", "noconfig"), /config is not an object/],
      [c.catalog(), /catalog/],
      [c.listTags("team/app"), /tags of team\/app.*not JSON/],
    ] as const) {
      const err = await failure(p);
      expect(err.kind).toBe("unknown");
      expect(err.message).toContain(`upstream ${bad.host}`);
      expect(err.message).toMatch(what);
    }
    const schema1 = await failure(c.getManifest("team/app", "schema1"));
    expect(schema1).toMatchObject({ kind: "failed-precondition", reason: "unsupported" });
    expect(schema1.message).toMatch(/schema 1/);
  });

  it("follows tag-list Link pages (relative and absolute) and stops a pagination loop", async () => {
    const all = ["a", "b", "c", "d", "e"];
    let origin = "";
    const paged = await serve((req, res) => {
      const url = new URL(req.url!, "http://x");
      if (url.pathname === "/v2/loop/tags/list") {
        json(res, 200, { name: "loop", tags: ["x"] }, { link: '</v2/loop/tags/list?n=1&last=x>; rel="next"' });
        return;
      }
      const n = Number(url.searchParams.get("n") ?? 100);
      const last = url.searchParams.get("last");
      const rest = last ? all.filter((t) => t > last) : all;
      const page = rest.slice(0, n);
      const more = rest.length > n;
      const target = `/v2/team/app/tags/list?n=${n}&last=${page.at(-1)}`;
      // Alternate relative and absolute links.
      const link = last === null ? target : `${origin}${target}`;
      json(res, 200, { name: "team/app", tags: page }, more ? { link: `<${link}>; rel="next"` } : {});
    });
    origin = paged.url;
    const c = client({ url: paged.url });
    const got: string[] = [];
    for await (const t of c.allTags("team/app", { pageSize: 2 })) got.push(t);
    expect(got).toEqual(all);
    expect(paged.requests.map((r) => r.url)).toEqual(["/v2/team/app/tags/list?n=2", "/v2/team/app/tags/list?n=2&last=b", "/v2/team/app/tags/list?n=2&last=d"]);

    const loop = await failure(
      (async () => {
        for await (const _ of c.allTags("loop")) void _;
      })(),
    );
    expect(loop.kind).toBe("unknown");
    expect(loop.message).toMatch(/repeats/);
  });

  it("retries 503 and 429 (honouring Retry-After) on reads, up to the attempt limit", async () => {
    const image = await smallImage();
    const flaky = await serve((req, res, n) => {
      if (req.url!.includes("/always/")) return json(res, 503, { errors: [{ code: "UNAVAILABLE", message: "down for maintenance" }] });
      if (req.url!.includes("/later/")) return json(res, 429, {}, { "retry-after": "3600" });
      if (n === 1) return json(res, 503, {});
      if (n === 2) return json(res, 429, {}, { "retry-after": "0" });
      res.writeHead(200, { "content-type": image.mediaType, "docker-content-digest": image.digest });
      res.end(image.bytes);
    });
    const c = client({ url: flaky.url });
    expect((await c.getManifest("team/app", "v1")).digest).toBe(image.digest);
    expect(flaky.requests.length).toBe(3);

    const before = flaky.requests.length;
    const down = await failure(c.getManifest("team/always", "v1"));
    expect(down).toMatchObject({ kind: "unavailable", status: 503 });
    expect(down.message).toMatch(/down for maintenance/);
    expect(flaky.requests.length - before).toBe(3);

    // Asked to come back in an hour: not waited for, no retry.
    const mid = flaky.requests.length;
    expect(await failure(c.getManifest("team/later", "v1"))).toMatchObject({ kind: "resource-exhausted", status: 429 });
    expect(flaky.requests.length - mid).toBe(1);
  });

  it("never retries once blob bytes were handed over", async () => {
    const cut = await serve((_req, res) => {
      res.writeHead(200, { "content-length": "1000000" });
      res.write(Buffer.alloc(1000), () => res.socket?.destroy());
    });
    const blob = await client({ url: cut.url }).getBlob("team/app", `sha256:${"2".repeat(64)}`);
    const err = await failure(drain(blob.body));
    expect(err.kind).toBe("unavailable");
    expect(err.message).toContain(cut.host);
    expect(cut.requests.length).toBe(1);
  });

  it("403 is permission-denied; secrets echoed by an upstream are redacted", async () => {
    const password = "s3cret-pass-word";
    const echo = await serve((req, res) => {
      if (!req.headers.authorization) return json(res, 401, {}, { "www-authenticate": 'Basic realm="echo"' });
      json(res, 403, { errors: [{ code: "DENIED", message: `not for you, ${req.headers.authorization} (${password})` }] });
    });
    const err = await failure(client({ url: echo.url, credential: { kind: "basic", username: "u", password } }).getManifest("team/app", "v1"));
    expect(err).toMatchObject({ kind: "permission-denied", status: 403 });
    expect(err.message).toContain("DENIED not for you");
    expect(err.message).not.toContain(password);
    expect(err.message).not.toContain(Buffer.from(`u:${password}`).toString("base64"));
    expect(err.message).toContain("[redacted]");
  });

  it("blob redirects to another host drop Authorization; same-origin redirects keep it", async () => {
    const content = Buffer.from("bytes kept by a storage backend\n");
    const digest = sha256(content);
    const storage = await serve((_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(content.length) });
      res.end(content);
    }, "localhost");
    const auth = `Basic ${Buffer.from("u:p4ssword").toString("base64")}`;
    const registry = await serve((req, res) => {
      if (req.headers.authorization !== auth) return json(res, 401, {}, { "www-authenticate": 'Basic realm="r"' });
      if (req.url!.startsWith("/v2/team/app/blobs/")) {
        res.writeHead(307, { location: `${storage.url}/blobs/${digest}?signature=abc` });
        return res.end();
      }
      if (req.url!.startsWith("/v2/team/local/blobs/")) {
        res.writeHead(302, { location: `/storage/${digest}` });
        return res.end();
      }
      if (req.url!.startsWith("/storage/")) {
        res.writeHead(200, { "content-length": String(content.length) });
        return res.end(content);
      }
      json(res, 404, {});
    });
    const c = client({ url: registry.url, credential: { kind: "basic", username: "u", password: "p4ssword" } });

    const away = await c.getBlob("team/app", digest);
    expect(await verified(away.body, digest)).toBe(content.length);
    expect(storage.requests).toHaveLength(1);
    expect(storage.requests[0]!.url).toBe(`/blobs/${digest}?signature=abc`);
    expect(storage.requests[0]!.headers.authorization).toBeUndefined();

    const local = await c.getBlob("team/local", digest);
    expect(await verified(local.body, digest)).toBe(content.length);
    expect(registry.requests.at(-1)).toMatchObject({ url: `/storage/${digest}`, headers: { authorization: auth } });
  });

  it("insecure skips TLS verification; without it a self-signed certificate is refused clearly", async () => {
    const dir = mkdtempSync(join(tmpdir(), "artifact-upstream-tls-"));
    try {
      await run("openssl", [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
      ]);
      const server = createHttpsServer({ key: await readFile(join(dir, "key.pem")), cert: await readFile(join(dir, "cert.pem")) });
      const tls = await tiny((_req, res) => json(res, 200, {}, { "docker-distribution-api-version": "registry/2.0" }), "127.0.0.1", server, "https");
      servers.push(tls);
      expect(tls.url.startsWith("https://")).toBe(true);
      const strict = await client({ url: tls.url }).ping();
      expect(strict).toMatchObject({ reachable: false, authenticated: false });
      expect(strict.message).toMatch(/TLS verification failed.*insecure/);
      expect(await client({ url: tls.url, insecure: true }).ping()).toMatchObject({ reachable: true, authenticated: true, status: 200 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("settings are checked: no credentials in the URL, only http(s), the registry root", () => {
    expect(() => client({ url: "https://user:pw@registry.example" })).toThrow(/credential/);
    expect(() => client({ url: "ftp://registry.example" })).toThrow(/http or https/);
    expect(() => client({ url: "https://registry.example/some/path" })).toThrow(/root/);
    expect(client({ url: "https://registry.example:5000/v2/" }).origin.href).toBe("https://registry.example:5000/");
  });
});

describe.skipIf(!ready)("UpstreamClients", () => {
  let reg: Distribution;
  const clients = new UpstreamClients(testUpstreamLimits({ retry: FAST_RETRY }), LOOPBACK);
  beforeAll(async () => {
    reg = await startDistribution({ auth: "basic" });
  });
  afterAll(async () => {
    await clients.close();
    await reg?.stop();
  });

  it("keeps one client per registry version and rebuilds it when the settings change", async () => {
    let opened = 0;
    const settings = (password: string) => () => {
      opened++;
      return { url: reg.url, credential: { kind: "basic" as const, username: reg.credentials!.username, password } };
    };
    const a = clients.get({ id: "r1", version: "1" }, settings("wrong"));
    expect(clients.get({ id: "r1", version: "1" }, settings("wrong"))).toBe(a);
    expect(opened).toBe(1);
    expect((await a.ping()).authenticated).toBe(false);

    const b = clients.get({ id: "r1", version: "2" }, settings(reg.credentials!.password));
    expect(b).not.toBe(a);
    expect(opened).toBe(2);
    expect(await b.ping()).toMatchObject({ authenticated: true, authScheme: "basic" });
    clients.forget("r1");
    expect(clients.size).toBe(0);
  });
});
