// MANIFEST_MAX_BYTES reaches the upstream client: raised to 8 MiB, a 5 MiB manifest on an upstream
// pulls through /v2/ byte for byte, reads over ImageService and syncs, as a push of it would be
// accepted; a client at the default 4 MiB refuses the same manifest, naming the limit.
//
// The upstream is a second instance of this service (a HOSTED registry with the limit raised, auth
// on, so the mirror signs in with an API token through its token flow):
// Distribution 2.8, the docker-registry the other upstream tests use, refuses manifest bodies over
// 4 MiB on PUT ("http: request body too large", asserted below: when a Debian update lifts that,
// make it the upstream here) and will not read one from its own storage either ("storage: read
// exceeds limit"), so it cannot hold the manifest at issue.
import { createClient, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImageService } from "../gen/artifact/v1/image_pb.js";
import { RegistryKind, RegistryService, type SyncRegistryProgress } from "../gen/artifact/v1/registry_pb.js";
import { TagService } from "../gen/artifact/v1/tag_pb.js";
import { AddressPolicy, parseAllowedNetworks } from "../src/upstream/address-policy.js";
import { UpstreamClient } from "../src/upstream/client.js";
import { catalogClients } from "./support/clients.js";
import { ADMIN_TOKEN } from "./support/credentials.js";
import { databaseKinds } from "./support/database.js";
import { startDistribution } from "./support/distribution.js";
import { havePeers } from "./support/peers.js";
import { MT, RegistryClient, type PushedImage } from "./support/registry-client.js";
import { startTestServer, testConfig, transports, type TestServer } from "./support/server.js";
import { testUpstreamLimits } from "./support/upstream-settings.js";

const MiB = 1024 * 1024;
const RAISED = 8 * MiB;

describe.each(databaseKinds())("a manifest over 4 MiB from an upstream, with MANIFEST_MAX_BYTES raised, on %s", (kind) => {
  let upstream: TestServer;
  let server: TestServer;
  let image: PushedImage;
  let mirrorId: string;
  let registries: Client<typeof RegistryService>;

  beforeAll(async () => {
    const config = { registry: { ...testConfig("").registry, manifestMaxBytes: RAISED } };
    [upstream, server] = await Promise.all([startTestServer(kind, { config }), startTestServer(kind, { config })]);
    const origin = catalogClients(transports["connect+json over HTTP/1.1"]!(upstream.httpUrl));
    await origin.registries.createRegistry({ registry: { name: "origin", kind: RegistryKind.HOSTED } });
    image = await new RegistryClient(upstream.httpUrl).pushImage("origin/team/app", "big", { annotations: { pad: "x".repeat(5 * MiB) } });
    expect(image.bytes.length).toBeGreaterThan(5 * MiB);

    registries = createClient(RegistryService, transports["connect+proto over HTTP/2"]!(server.httpUrl));
    // The upstream has auth on: the mirror signs in there with an API token (its token flow).
    const mirror = await registries.createRegistry({
      registry: { name: "mirror", kind: RegistryKind.REMOTE, url: upstream.httpUrl, credential: { kind: { case: "token", value: ADMIN_TOKEN } } },
    });
    mirrorId = mirror.id;
  });
  afterAll(async () => {
    await server?.stop();
    await upstream?.stop();
  });

  it("pulls it through /v2/ byte for byte, by tag and then by digest", async () => {
    const reg = new RegistryClient(server.httpUrl);
    const byTag = await reg.req("GET", "/v2/mirror/origin/team/app/manifests/big", { headers: { accept: MT.ociManifest } });
    expect(byTag.status, byTag.body.toString().slice(0, 300)).toBe(200);
    expect(byTag.headers.get("docker-content-digest")).toBe(image.digest);
    expect(byTag.body.equals(image.bytes)).toBe(true);
    const byDigest = await reg.req("GET", `/v2/mirror/origin/team/app/manifests/${image.digest}`, { headers: { accept: MT.ociManifest } });
    expect(byDigest.status).toBe(200);
    expect(byDigest.body.equals(image.bytes)).toBe(true);
  });

  it("reads it over ImageService.GetManifest", async () => {
    const images = createClient(ImageService, transports["grpc over HTTP/2 (h2c)"]!(server.httpUrl));
    const got = await images.getManifest({ repository: "mirror/origin/team/app", reference: "big" });
    expect(got.digest).toBe(image.digest);
    expect(Buffer.from(got.raw).equals(image.bytes)).toBe(true);
  });

  it("syncs it: the tag carries the manifest's size and what it references", async () => {
    const progress: SyncRegistryProgress[] = [];
    for await (const p of registries.syncRegistry({ id: mirrorId })) progress.push(p);
    const last = progress.at(-1)!;
    expect(last).toMatchObject({ done: true, errors: 0, repositoriesSynced: 1 });
    expect(progress.filter((p) => p.error !== "")).toEqual([]);

    const repositories = catalogClients(transports["connect+json over HTTP/1.1"]!(server.httpUrl)).repositories;
    const { repositories: found } = await repositories.listRepositories({ query: "team/app" });
    expect(found.map((r) => r.name)).toEqual(["team/app"]);
    const tags = createClient(TagService, transports["connect+json over HTTP/1.1"]!(server.httpUrl));
    const { tags: synced } = await tags.listTags({ repositoryId: found[0]!.id });
    expect(synced.map((t) => ({ name: t.name, digest: t.digest, sizeBytes: t.sizeBytes }))).toEqual([
      { name: "big", digest: image.digest, sizeBytes: BigInt(image.bytes.length + image.config.length + image.layer.length) },
    ]);
  });

  it("an upstream client at the default limit refuses it, naming the limit", async () => {
    const limits = testUpstreamLimits();
    expect(limits.maxManifestBytes).toBe(4 * MiB);
    const client = new UpstreamClient(
      { url: upstream.httpUrl, credential: { kind: "token", token: ADMIN_TOKEN } },
      { limits, policy: new AddressPolicy({ allowed: parseAllowedNetworks("127.0.0.1").networks }) },
    );
    try {
      await expect(client.getManifest("origin/team/app", "big")).rejects.toThrow(`larger than ${4 * MiB} bytes`);
    } finally {
      await client.close();
    }
  });
});

describe.skipIf(!havePeers("test/upstream-manifest-limit.test.ts", "docker-registry"))("Distribution 2.8 as that upstream", () => {
  it("refuses a manifest over 4 MiB, so it cannot be the upstream of the tests above", async () => {
    const distribution = await startDistribution();
    try {
      const reg = new RegistryClient(distribution.url);
      const small = await reg.pushImage("team/app", "small");
      const big = JSON.parse(small.bytes.toString()) as Record<string, unknown>;
      big.annotations = { pad: "x".repeat(5 * MiB) };
      const res = await reg.putManifest("team/app", "big", big);
      expect({ status: res.status, code: res.json?.errors?.[0]?.code }).toEqual({ status: 400, code: "MANIFEST_INVALID" });
    } finally {
      await distribution.stop();
    }
  });
});
