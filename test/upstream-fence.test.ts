// REMOTE upstreams cannot be turned against the network the service runs in (issue 9 §3), over
// real servers: the service with the default policy refuses a loopback upstream on every path that
// reaches one (PingRegistry, SyncRegistry, ImageService, the /v2/ pull-through, REST), whatever the
// spelling of the address; UPSTREAM_ALLOWED_NETWORKS opens networks and host names but never the
// service's own listeners; redirect hops are judged like the first request; a url moved to another
// host drops the stored credential. The upstreams are tiny HTTP servers on loopback that record
// every request, so "refused" also means "nothing was sent".
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImageService } from "../gen/artifact/v1/image_pb.js";
import { RegistryKind, RegistryService, type CredentialSchema, type SyncRegistryProgress } from "../gen/artifact/v1/registry_pb.js";
import { startServer, type RunningServer } from "../src/server.js";
import { AddressPolicy, parseAllowedNetworks } from "../src/upstream/address-policy.js";
import { UpstreamClient } from "../src/upstream/client.js";
import { expectCode, unique } from "./support/clients.js";
import { adminFetch } from "./support/credentials.js";
import { databaseKinds, quietLog } from "./support/database.js";
import { expectOciError, RegistryClient } from "./support/registry-client.js";
import { startTestServer, testConfig, transports, type TestServer } from "./support/server.js";
import { testUpstream, testUpstreamLimits } from "./support/upstream-settings.js";

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const FAST = { retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 }, timeouts: { connectMs: 2_000, headersMs: 5_000, bodyIdleMs: 5_000 } };

// ---- a tiny upstream registry that records what reaches it ----

const CONFIG = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
const MANIFEST = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(CONFIG), size: CONFIG.length },
    layers: [],
  }),
);
const MANIFEST_DIGEST = sha256(MANIFEST);

interface Tiny {
  url: string;
  port: number;
  requests: { method: string; url: string; headers: IncomingHttpHeaders }[];
  /** Where blob and manifest requests of `team/moved` are sent (a 307), when set. */
  redirectTo?: string;
  /** Answer 401 with a Basic challenge unless this Authorization comes. */
  requireAuthorization?: string;
  close(): Promise<void>;
}

async function tinyRegistry(): Promise<Tiny> {
  const server = createServer();
  const tiny: Tiny = {
    url: "",
    port: 0,
    requests: [],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    tiny.requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json", "docker-distribution-api-version": "registry/2.0", ...headers });
      res.end(JSON.stringify(body));
    };
    if (tiny.requireAuthorization !== undefined && req.headers.authorization !== tiny.requireAuthorization) {
      return json(401, { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }, { "www-authenticate": 'Basic realm="tiny"' });
    }
    const url = req.url ?? "";
    if (url === "/v2/") return json(200, {});
    if (url.startsWith("/v2/_catalog")) return json(200, { repositories: ["team/app"] });
    if (url.startsWith("/v2/team/app/tags/list")) return json(200, { name: "team/app", tags: ["1.0"] });
    if (url.startsWith("/v2/team/moved/") && tiny.redirectTo) {
      res.writeHead(307, { location: tiny.redirectTo });
      return res.end();
    }
    if (/^\/v2\/team\/app\/manifests\/(1\.0|sha256:[0-9a-f]{64})$/.test(url)) {
      res.writeHead(200, {
        "content-type": "application/vnd.oci.image.manifest.v1+json",
        "content-length": String(MANIFEST.length),
        "docker-content-digest": MANIFEST_DIGEST,
      });
      return res.end(req.method === "HEAD" ? undefined : MANIFEST);
    }
    json(404, { errors: [{ code: "NAME_UNKNOWN", message: "unknown" }] });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  tiny.port = (server.address() as AddressInfo).port;
  tiny.url = `http://127.0.0.1:${tiny.port}`;
  return tiny;
}

/** The error a sync ended with (undefined when it completed). */
async function syncError(stream: AsyncIterable<SyncRegistryProgress>): Promise<ConnectError | undefined> {
  try {
    for await (const m of stream) void m;
  } catch (err) {
    return ConnectError.from(err);
  }
  return undefined;
}

describe.each(databaseKinds())("the upstream fence on %s", (kind) => {
  // One database, three services over it: the tests' own (127.0.0.0/8 allowed), one with the
  // default policy, one that allows the host name `localhost` only. A registry made through
  // one is seen by all, so each call below differs only in the policy that judges it.
  let open: TestServer;
  let strict: RunningServer;
  let byName: RunningServer;
  const dirs: string[] = [];
  let upstream: Tiny;
  let registries: Client<typeof RegistryService>;
  let strictRegistries: Client<typeof RegistryService>;
  let byNameRegistries: Client<typeof RegistryService>;

  const transport = (server: { http: AddressInfo }) => transports["connect+json over HTTP/1.1"]!(`http://127.0.0.1:${server.http.port}`);
  const registryClient = (server: { http: AddressInfo }) => createClient(RegistryService, transport(server));
  const imageClient = (server: { http: AddressInfo }) => createClient(ImageService, transport(server));

  async function sibling(allowed: string): Promise<RunningServer> {
    const dir = mkdtempSync(join(tmpdir(), "artifact-fence-"));
    dirs.push(dir);
    const config = testConfig(dir, { upstream: testUpstream({ ...FAST, allowed }) });
    return startServer(config, quietLog, { database: open.database });
  }

  beforeAll(async () => {
    upstream = await tinyRegistry();
    open = await startTestServer(kind, { config: { upstream: testUpstream(FAST) } });
    [strict, byName] = await Promise.all([sibling(""), sibling("localhost")]);
    registries = registryClient(open);
    strictRegistries = registryClient(strict);
    byNameRegistries = registryClient(byName);
  });
  afterAll(async () => {
    await strict?.close();
    await byName?.close();
    await open?.stop();
    await upstream?.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  const remote = (url: string, extra: { credential?: MessageInitShape<typeof CredentialSchema> } = {}) =>
    registries.createRegistry({ registry: { name: unique("fence"), kind: RegistryKind.REMOTE, url, ...extra } });

  it("by default a loopback upstream is refused on every path, with PERMISSION_DENIED naming host, address, rule and setting; nothing reaches it", async () => {
    const r = await remote(upstream.url);
    const before = upstream.requests.length;
    const mentions = new RegExp(`127\\.0\\.0\\.1:${upstream.port} refused: 127\\.0\\.0\\.1 is loopback \\(127\\.0\\.0\\.0/8\\).*UPSTREAM_ALLOWED_NETWORKS`);

    await expectCode(strictRegistries.pingRegistry({ id: r.id }), Code.PermissionDenied, mentions);
    const sync = await syncError(strictRegistries.syncRegistry({ id: r.id }));
    expect(sync?.code).toBe(Code.PermissionDenied);
    expect(sync?.rawMessage).toMatch(mentions);
    const images = imageClient(strict);
    await expectCode(images.getManifest({ repository: `${r.name}/team/app`, reference: "1.0" }), Code.PermissionDenied, mentions);

    // The registry API: 403 DENIED, not a 5xx (the upstream is not down; the operator's policy says no).
    const v2 = new RegistryClient(`http://127.0.0.1:${strict.http.port}`);
    expectOciError(await v2.req("GET", `/v2/${r.name}/team/app/manifests/1.0`), 403, "DENIED", mentions);
    expectOciError(await v2.req("GET", `/v2/${r.name}/team/app/blobs/${sha256(CONFIG)}`), 403, "DENIED", mentions);
    // REST: the Connect status of PERMISSION_DENIED.
    const rest = await adminFetch(`http://127.0.0.1:${strict.http.port}/v1/registries/${r.id}:ping`, {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    expect(rest.status).toBe(403);
    expect(((await rest.json()) as { message: string }).message).toMatch(mentions);

    expect(upstream.requests.length, "nothing is sent to a refused address, and it is not retried").toBe(before);

    // The same registry through the service that allows 127.0.0.0/8: reachable, so the refusal above was the policy.
    expect(await registries.pingRegistry({ id: r.id })).toMatchObject({ reachable: true, authenticated: true, status: 200 });
    expect(upstream.requests.length).toBe(before + 1);
  });

  it.each([
    ["decimal", (port: number) => `http://2130706433:${port}`, "127.0.0.1 is loopback"],
    ["hex and short", (port: number) => `http://0x7f.1:${port}`, "127.0.0.1 is loopback"],
    ["octal", (port: number) => `http://0177.0.0.1:${port}`, "127.0.0.1 is loopback"],
    ["IPv4-mapped IPv6", (port: number) => `http://[::ffff:127.0.0.1]:${port}`, "::ffff:7f00:1 (IPv4 127.0.0.1) is loopback"],
    ["a host name resolving to loopback", (port: number) => `http://localhost:${port}`, "resolves to 127.0.0.1, which is loopback"],
  ])("the %s spelling is refused the same way", async (_what, spell, rule) => {
    const r = await remote(spell(upstream.port));
    const before = upstream.requests.length;
    const err = await expectCode(strictRegistries.pingRegistry({ id: r.id }), Code.PermissionDenied, "UPSTREAM_ALLOWED_NETWORKS");
    expect(err.rawMessage).toContain(rule);
    expect(err.rawMessage).toContain(`:${upstream.port}`);
    expect(upstream.requests.length).toBe(before);
  });

  it("an allow-list host name opens that name, not the addresses it resolves to", async () => {
    const byHost = await remote(`http://localhost:${upstream.port}`);
    expect(await byNameRegistries.pingRegistry({ id: byHost.id })).toMatchObject({ reachable: true, status: 200 });
    const byAddress = await remote(upstream.url);
    await expectCode(byNameRegistries.pingRegistry({ id: byAddress.id }), Code.PermissionDenied, "127.0.0.1 is loopback");
  });

  it("the service's own listeners are refused even where the allow-list covers them", async () => {
    for (const [server, allowed] of [
      [open, "127.0.0.0/8"],
      [byName, "localhost"],
    ] as const) {
      for (const port of [server.http.port, server.grpc.port]) {
        const self = await remote(`http://${allowed === "localhost" ? "localhost" : "127.0.0.1"}:${port}`);
        await expectCode(
          registryClient(server).pingRegistry({ id: self.id }),
          Code.PermissionDenied,
          new RegExp(`is this service's own listener on port ${port}.*UPSTREAM_ALLOWED_NETWORKS cannot allow it`),
        );
      }
    }
  });

  describe("redirects", () => {
    beforeAll(() => {
      upstream.redirectTo = "http://169.254.169.254/latest/meta-data/";
    });
    afterAll(() => {
      upstream.redirectTo = undefined;
    });

    it("a hop to a refused address is refused at the hop, once, naming both hosts (ImageService and /v2/)", async () => {
      const r = await remote(upstream.url);
      const before = upstream.requests.length;
      const images = imageClient(open);
      const err = await expectCode(images.getManifest({ repository: `${r.name}/team/moved`, reference: "1.0" }), Code.PermissionDenied);
      expect(err.rawMessage).toContain(`from upstream 127.0.0.1:${upstream.port} led to http://169.254.169.254`);
      expect(err.rawMessage).toContain("169.254.169.254 is link-local (169.254.0.0/16)");
      expect(err.rawMessage).toContain("UPSTREAM_ALLOWED_NETWORKS");

      const v2 = new RegistryClient(open.httpUrl);
      expectOciError(await v2.req("GET", `/v2/${r.name}/team/moved/blobs/${sha256(CONFIG)}`), 403, "DENIED", /169\.254\.169\.254 is link-local/);
      // One request each: the refusal is not retried.
      expect(upstream.requests.slice(before).map((q) => q.url)).toEqual([`/v2/team/moved/manifests/1.0`, `/v2/team/moved/blobs/${sha256(CONFIG)}`]);
    });

    it("a hop back to the service itself is refused", async () => {
      upstream.redirectTo = `${open.httpUrl}/v2/`;
      const r = await remote(upstream.url);
      const err = await expectCode(
        imageClient(open).getManifest({ repository: `${r.name}/team/moved`, reference: "1.0" }),
        Code.PermissionDenied,
        `own listener on port ${open.http.port}`,
      );
      expect(err.rawMessage).toContain(`led to ${open.httpUrl}`);
    });
  });

  describe("a url moved to another upstream drops the stored credential", () => {
    const auth = `Basic ${Buffer.from("ci:old-secret").toString("base64")}`;
    let other: Tiny;
    beforeAll(async () => {
      other = await tinyRegistry();
      upstream.requireAuthorization = auth;
      other.requireAuthorization = "never sent";
    });
    afterAll(async () => {
      upstream.requireAuthorization = undefined;
      await other?.close();
    });

    it("moving host or port without a credential clears it, and the old secret never reaches the new host", async () => {
      const r = await remote(upstream.url, { credential: { kind: { case: "basic", value: { username: "ci", password: "old-secret" } } } });
      expect(r.hasCredential).toBe(true);
      expect(await registries.pingRegistry({ id: r.id })).toMatchObject({ authenticated: true, authScheme: "basic" });

      // Same origin, other spelling (PUT of every field): the credential stays.
      const same = await registries.updateRegistry({ registry: { id: r.id, name: r.name, url: `${upstream.url}/`, description: "same host" } });
      expect(same.hasCredential).toBe(true);

      const moved = await registries.updateRegistry({ registry: { id: r.id, url: other.url, etag: same.etag }, updateMask: { paths: ["url"] } });
      expect(moved.hasCredential).toBe(false);
      expect((await registries.getRegistry({ id: r.id })).hasCredential).toBe(false);
      const ping = await registries.pingRegistry({ id: r.id });
      expect(ping).toMatchObject({ reachable: true, authenticated: false, status: 401 });
      expect(other.requests.length).toBeGreaterThan(0);
      expect(other.requests.every((q) => q.headers.authorization === undefined)).toBe(true);
      expect(JSON.stringify(other.requests)).not.toContain(auth.slice("Basic ".length));
    });

    it("a credential given with the new url is kept; a scheme change alone drops it", async () => {
      const r = await remote(upstream.url, { credential: { kind: { case: "token", value: "old-token" } } });
      const withNew = await registries.updateRegistry({
        registry: { id: r.id, url: other.url, credential: { kind: { case: "basic", value: { username: "ci", password: "new-secret" } } } },
        updateMask: { paths: ["url", "credential"] },
      });
      expect(withNew.hasCredential).toBe(true);
      await registries.pingRegistry({ id: r.id });
      expect(other.requests.at(-1)?.headers.authorization).toBe(`Basic ${Buffer.from("ci:new-secret").toString("base64")}`);

      const tls = await registries.updateRegistry({ registry: { id: r.id, url: other.url.replace("http:", "https:") }, updateMask: { paths: ["url"] } });
      expect(tls.hasCredential).toBe(false);
    });
  });
});

describe("DNS rebinding through the real connector", () => {
  it("each new connection is judged on a fresh answer: allowed first, refused when the name moves to a forbidden address", async () => {
    const tiny = await tinyRegistry();
    let answers = 0;
    const policy = new AddressPolicy({
      allowed: parseAllowedNetworks("127.0.0.1").networks,
      resolve: (_host, _options, callback) => callback(null, [{ address: answers++ === 0 ? "127.0.0.1" : "169.254.169.254", family: 4 }]),
    });
    const c = new UpstreamClient({ url: `http://rebind.test:${tiny.port}` }, { policy, limits: testUpstreamLimits({ retry: { attempts: 1 } }) });
    try {
      const first = await c.ping();
      expect(first).toMatchObject({ reachable: true, status: 200 });
      // A new connection (another client's pool), so a new lookup.
      await c.close();
      const again = new UpstreamClient({ url: `http://rebind.test:${tiny.port}` }, { policy, limits: testUpstreamLimits({ retry: { attempts: 1 } }) });
      const err = await again.getManifest("team/app", "1.0").then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      await again.close();
      expect(err?.message).toContain(`rebind.test:${tiny.port} resolves to 169.254.169.254, which is link-local`);
      expect(tiny.requests).toHaveLength(1);
      expect(answers).toBe(2);
    } finally {
      await tiny.close();
    }
  });
});
