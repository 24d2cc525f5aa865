// The registry with its content on S3-compatible object storage (CONTENT_STORE=s3, on Swift's
// s3api): skopeo pushes and pulls with nothing on the local disk, the pull-through cache of a
// REMOTE registry fills the same bucket, garbage collection deletes objects from it, and
// BLOB_REDIRECT sends blob GETs to presigned URLs (Range honoured by the store) while HEAD stays
// on the service. Replicas behind a balancer: test/replicas.test.ts.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { createClient } from "@connectrpc/connect";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GarbageCollectionService } from "../gen/artifact/v1/garbage_collection_pb.js";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import type { ContentConfig } from "../src/config.js";
import { catalogClients, unique } from "./support/clients.js";
import { databaseKinds } from "./support/database.js";
import { startDistribution, type Distribution } from "./support/distribution.js";
import { fileDigest, largeImage, smallImage, type BuiltImage } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { RegistryClient, sha256, withDigest, pathOf } from "./support/registry-client.js";
import { pullImage, pushImage, type RegistryEndpoint } from "./support/skopeo.js";
import { startTestServer, transports, type TestServer } from "./support/server.js";
import { haveS3TestServer, s3TestServer } from "./support/swift.js";

const MiB = 1 << 20;
const ready = haveS3TestServer("test/oci-s3.test.ts") && havePeers("test/oci-s3.test.ts", "skopeo", "docker-registry");

describe.skipIf(!ready).each(databaseKinds())("the registry on S3 object storage, %s", (kind) => {
  let store: Awaited<ReturnType<typeof s3TestServer>>;
  let bucket: string;
  let server: TestServer;
  let redirecting: TestServer;
  let upstream: Distribution;
  let big: BuiltImage;
  let small: BuiltImage;
  const scratch = mkdtempSync(join(tmpdir(), "artifact-s3-"));

  const content = (redirect: boolean, prefix: string): ContentConfig => ({
    kind: "s3",
    s3: {
      endpoint: store.endpoint,
      region: store.region,
      bucket,
      prefix,
      forcePathStyle: true,
      credentials: { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey },
    },
    partSize: 5 * MiB,
    partConcurrency: 4,
    redirect,
    redirectSeconds: 60,
  });
  const keys = async (prefix: string): Promise<string[]> => {
    const client = store.client();
    try {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (page.Contents ?? []).map((o) => o.Key!.slice(prefix.length));
    } finally {
      client.destroy();
    }
  };
  const hosted = async (on: TestServer): Promise<string> => {
    const name = unique("s3");
    await catalogClients(transports["connect+json over HTTP/1.1"]!(on.httpUrl)).registries.createRegistry({ registry: { name, kind: RegistryKind.HOSTED } });
    return name;
  };
  const endpointOf = (on: TestServer): RegistryEndpoint => ({ host: `127.0.0.1:${on.http.port}` });

  beforeAll(async () => {
    store = await s3TestServer();
    bucket = await store.createBucket("oci-");
    [server, redirecting, upstream, big, small] = await Promise.all([
      startTestServer(kind, { config: { content: content(false, "plain/") } }),
      startTestServer(kind, { config: { content: content(true, "redirect/") } }),
      startDistribution(),
      largeImage(24, "s3-big"),
      smallImage("s3"),
    ]);
  }, 300_000);
  afterAll(async () => {
    await Promise.all([server?.stop(), redirecting?.stop(), upstream?.stop()]);
    await store?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("takes a skopeo push and gives it back byte for byte, with nothing on the local disk", async () => {
    const repo = `${await hosted(server)}/team/big`;
    expect(await pushImage(big, endpointOf(server), repo, "1.0")).toBe(big.digest);
    const dir = join(scratch, "pulled-big");
    await pullImage(endpointOf(server), repo, "1.0", { dir, transport: "oci" });
    const layer = big.manifests[0]!.layers[0]!;
    expect(await fileDigest(join(dir, "blobs", "sha256", layer.digest.slice(7)))).toBe(layer.digest);
    // The bytes are in the bucket: an index object per blob, data objects beside; DATA_DIR has no blobs.
    expect(await keys("plain/blobs/")).toContain(`sha256/${layer.digest.slice(7, 9)}/${layer.digest.slice(7)}`);
    expect(existsSync(join(server.dataDir, "blobs"))).toBe(false);
  });

  it("fills the pull-through cache of a REMOTE registry in the same bucket", async () => {
    await pushImage(small, upstream, "team/app", "1.0");
    const mirror = unique("mirror");
    await catalogClients(transports["connect+json over HTTP/1.1"]!(server.httpUrl)).registries.createRegistry({
      registry: { name: mirror, kind: RegistryKind.REMOTE, url: upstream.url },
    });
    const dir = join(scratch, "pulled-through");
    expect((await pullImage(endpointOf(server), `${mirror}/team/app`, "1.0", { dir, transport: "oci" })).digest).toBe(small.digest);
    const layer = small.manifests[0]!.layers[0]!;
    // A cache fill is kept in the background once the client has its bytes.
    const deadline = Date.now() + 20_000;
    while (!(await server.content.stat(layer.digest)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await server.content.stat(layer.digest)).toEqual({ size: layer.size });
    expect(await keys("plain/blobs/")).toContain(`sha256/${layer.digest.slice(7, 9)}/${layer.digest.slice(7)}`);
  });

  it("collects garbage out of the bucket: a blob no manifest uses loses its index and its bytes", async () => {
    const repo = `${await hosted(server)}/team/loose`;
    const reg = new RegistryClient(server.httpUrl);
    const bytes = Buffer.from(`loose ${unique("blob")}`);
    await reg.uploadBlob(repo, bytes);
    const digest = sha256(bytes);
    const indexKey = `sha256/${digest.slice(7, 9)}/${digest.slice(7)}`;
    expect(await keys("plain/blobs/")).toContain(indexKey);
    const dataBefore = (await keys("plain/data/")).length;
    await server.database.db.execute(sql`update blobs set push_time = now() - interval '2 hours' where digest = ${digest}`);
    const gc = createClient(GarbageCollectionService, transports["connect+json over HTTP/1.1"]!(server.httpUrl));
    const report = await gc.runGarbageCollection({});
    expect(report.blobsDeleted).toBeGreaterThanOrEqual(1n);
    expect(await keys("plain/blobs/")).not.toContain(indexKey);
    expect((await keys("plain/data/")).length).toBe(dataBefore - 1);
    expect(await server.content.stat(digest)).toBeUndefined();
  });

  it("BLOB_REDIRECT: GET answers 307 to a presigned URL that honours Range, HEAD stays on the service, skopeo pulls through it", async () => {
    const repo = `${await hosted(redirecting)}/team/app`;
    const reg = new RegistryClient(redirecting.httpUrl);
    const bytes = Buffer.alloc(3 * MiB + 5, 7);
    bytes.write(unique("payload"));
    const start = await reg.req("POST", `/v2/${repo}/blobs/uploads/`);
    expect((await reg.req("PUT", withDigest(pathOf(start.headers.get("location")), sha256(bytes)), { body: bytes })).status).toBe(201);
    const digest = sha256(bytes);

    const head = await reg.req("HEAD", `/v2/${repo}/blobs/${digest}`);
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(bytes.length));

    const get = await reg.req("GET", `/v2/${repo}/blobs/${digest}`);
    expect(get.status).toBe(307);
    expect(get.headers.get("docker-content-digest")).toBe(digest);
    expect(get.headers.get("cache-control")).toBe("no-store");
    const location = get.headers.get("location")!;
    expect(location.startsWith(`${store.endpoint}/${bucket}/redirect/data/`)).toBe(true);
    expect(location).toContain("X-Amz-Signature=");
    // The store serves the bytes, and the client's Range, without credentials of the service.
    const whole = await fetch(location);
    expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true);
    const part = await fetch(location, { headers: { range: "bytes=100-199" } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 200))).toBe(true);
    // An unknown blob is still the service's 404, not a redirect.
    expect((await reg.req("GET", `/v2/${repo}/blobs/${sha256(Buffer.from("absent"))}`)).status).toBe(404);

    // skopeo follows the redirects for every blob of a pull.
    await pushImage(small, endpointOf(redirecting), repo, "1.0");
    const dir = join(scratch, "pulled-redirected");
    await pullImage(endpointOf(redirecting), repo, "1.0", { dir, transport: "oci" });
    const layer = small.manifests[0]!.layers[0]!;
    expect(await readFile(join(dir, "blobs", "sha256", layer.digest.slice(7)))).toHaveLength(layer.size);
  });
});
