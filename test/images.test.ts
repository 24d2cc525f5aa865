// ImageService against real upstreams: Debian's docker-registry (CNCF Distribution 2.8) without
// auth, with htpasswd Basic and with token auth, holding images Debian's skopeo pushed (small,
// 64 MiB multi-layer, two-platform index, Docker schema 2); and HOSTED registries that skopeo
// pushed to this service's own /v2/. Manifests and blobs are compared byte for byte over Connect,
// gRPC (grpc-js), and REST (plain fetch), with damage done to the upstream's files on disk.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, request as httpRequest, type Server } from "node:http";
import { connect as connectNet, createServer as createNetServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImageService, type GetBlobResponse } from "../gen/artifact/v1/image_pb.js";
import { RegistryKind, RegistryService } from "../gen/artifact/v1/registry_pb.js";
import { expectCode, unique } from "./support/clients.js";
import { ADMIN_AUTHORIZATION, ADMIN_TOKEN, adminFetch, adminInterceptor } from "./support/credentials.js";
import { databaseKinds } from "./support/database.js";
import { startDistribution, type Distribution } from "./support/distribution.js";
import { packageRoot } from "../src/paths.js";
import { adminMetadata, target } from "./support/grpc-clients.js";
import { dockerSchema2Image, largeImage, MediaType, multiLayerImage, multiPlatformIndex, smallImage, type BuiltImage } from "./support/oci-images.js";
import { bindRole, bearer, createAccount, identityClients, startAuthServer, type IdentityClients } from "./support/identity.js";
import { havePeers } from "./support/peers.js";
import { makeImage, MT, RegistryClient, type PushedImage } from "./support/registry-client.js";
import { freePort } from "./support/postgres.js";
import { testUpstream } from "./support/upstream-settings.js";
import { baseUrlFor, startTestServer, transports, type TestServer } from "./support/server.js";
import { pushImage } from "./support/skopeo.js";

const ready = havePeers("test/images.test.ts", "skopeo", "docker-registry", "htpasswd", "openssl");
const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const MiB = 1024 * 1024;

interface Images {
  small: BuiltImage;
  multi: BuiltImage;
  index: BuiltImage;
  docker: BuiltImage;
}

/** Where each image sits on an upstream. */
const REPOS: Record<keyof Images, string> = { small: "team/small", multi: "team/multi", index: "team/index", docker: "team/docker" };

async function pushAll(images: Images, reg: Distribution): Promise<void> {
  for (const key of Object.keys(REPOS) as (keyof Images)[]) await pushImage(images[key], reg, REPOS[key], "v1");
  // A single-component name: Docker's implicit library/ namespace on our side.
  await pushImage(images.small, reg, "testbox", "latest");
}

/** Every message of a GetBlob stream, or the error that ended it with what came before. */
async function readBlob(stream: AsyncIterable<GetBlobResponse>): Promise<{ messages: GetBlobResponse[]; bytes: Buffer; error?: ConnectError }> {
  const messages: GetBlobResponse[] = [];
  try {
    for await (const m of stream) messages.push(m);
  } catch (err) {
    return { messages, bytes: Buffer.concat(messages.map((m) => m.data)), error: ConnectError.from(err) };
  }
  return { messages, bytes: Buffer.concat(messages.map((m) => m.data)) };
}

type GrpcStream = NodeJS.ReadableStream & { on(event: "error", cb: (err: grpc.ServiceError) => void): GrpcStream };
const grpcDefinition = protoLoader.loadSync(["artifact/v1/image.proto"], {
  includeDirs: [join(packageRoot, "proto"), join(packageRoot, "node_modules/google-proto-files")],
  keepCase: true,
  longs: String,
  defaults: true,
});
const GrpcImageService = (grpc.loadPackageDefinition(grpcDefinition) as unknown as { artifact: { v1: { ImageService: grpc.ServiceClientConstructor } } })
  .artifact.v1.ImageService;

/** A raw HTTP GET (as the admin) that records what arrived and whether the transfer ended cleanly. */
function rawGet(
  url: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers: { authorization: ADMIN_AUTHORIZATION, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      const finish = () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete });
      res.on("end", finish);
      res.on("error", finish);
      res.on("aborted", finish);
    });
    req.on("error", reject);
    req.end();
  });
}

describe.skipIf(!ready)("ImageService", () => {
  let images: Images;
  let broken: { manifest: BuiltImage; blob: BuiltImage };
  const upstreams: Partial<Record<"none" | "basic" | "token", Distribution>> = {};
  let frozen: Distribution;
  let malformed: Server;
  let malformedHost: string;

  beforeAll(async () => {
    const [small, multi, index, docker, brokenManifest, brokenBlob] = await Promise.all([
      smallImage("img"),
      multiLayerImage("img"),
      multiPlatformIndex("img"),
      dockerSchema2Image("img"),
      smallImage("damaged-manifest"),
      largeImage(3, "damaged-blob"),
    ]);
    images = { small, multi, index, docker };
    broken = { manifest: brokenManifest, blob: brokenBlob };
    for (const auth of ["none", "basic", "token"] as const) {
      upstreams[auth] = await startDistribution({ auth });
      await pushAll(images, upstreams[auth]);
    }
    // Images only the damage tests use: their files are damaged on the upstream's disk.
    const none = upstreams.none!;
    await pushImage(broken.manifest, none, "team/damaged-manifest", "v1");
    await pushImage(broken.blob, none, "team/damaged-blob", "v1");
    await none.corruptBlob(broken.manifest.digest, "flip");
    await none.corruptBlob(broken.blob.manifests[0]!.layers[0]!.digest, "flip");
    frozen = await startDistribution();
    await pushImage(images.small, frozen, "team/small", "v1");
    // An upstream that answers the registry API with a manifest that is not one.
    malformed = createServer((req, res) => {
      if (req.url === "/v2/") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{}");
        return;
      }
      const body = Buffer.from('{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": "nope"}');
      res.writeHead(200, { "content-type": MediaType.ociManifest, "content-length": body.length, "docker-content-digest": sha256(body) });
      res.end(req.method === "HEAD" ? undefined : body);
    });
    await new Promise<void>((resolve) => malformed.listen(0, "127.0.0.1", resolve));
    malformedHost = `127.0.0.1:${(malformed.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    frozen?.thaw();
    await Promise.all([...Object.values(upstreams).map((u) => u?.stop()), frozen?.stop()]);
    malformed?.closeAllConnections();
    await new Promise((resolve) => malformed?.close(resolve));
  });

  describe.each(databaseKinds())("on %s", (kind) => {
    let server: TestServer;
    let client: Client<typeof ImageService>;
    let registries: Client<typeof RegistryService>;
    const remote: Record<string, string> = {};

    const createRemote = async (name: string, url: string, credential?: { username: string; password: string }) =>
      registries.createRegistry({
        registry: { name, kind: RegistryKind.REMOTE, url, credential: credential ? { kind: { case: "basic", value: credential } } : undefined },
      });

    beforeAll(async () => {
      server = await startTestServer(kind, {
        config: {
          upstream: testUpstream({
            timeouts: { connectMs: 2_000, headersMs: 1_500, bodyIdleMs: 1_500 },
            retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
          }),
        },
      });
      const transport = createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [adminInterceptor] });
      client = createClient(ImageService, transport);
      registries = createClient(RegistryService, transport);
      for (const auth of ["none", "basic", "token"] as const) {
        const u = upstreams[auth]!;
        remote[auth] = (await createRemote(`up-${auth}`, u.url, u.credentials)).id;
      }
    });
    afterAll(() => server?.stop());

    describe.each(["none", "basic", "token"] as const)("REMOTE upstream with auth %s", (auth) => {
      it.each(Object.keys(REPOS) as (keyof Images)[])(
        "GetManifest of the %s image by tag and by digest: the exact bytes, digest, media type, summary",
        async (key) => {
          const image = images[key];
          const repository = `up-${auth}/${REPOS[key]}`;
          const byTag = await client.getManifest({ repository, reference: "v1" });
          expect(byTag.digest).toBe(image.digest);
          expect(byTag.mediaType).toBe(image.mediaType);
          expect(Number(byTag.sizeBytes)).toBe(image.size);
          expect(Buffer.from(byTag.raw).equals(image.bytes)).toBe(true);
          const byDigest = await client.getManifest({ repository, reference: image.digest });
          expect(Buffer.from(byDigest.raw).equals(image.bytes)).toBe(true);
          const s = byTag.summary!;
          if (key === "index") {
            expect(s.manifests.map((m) => m.digest)).toEqual(image.manifests.map((m) => m.digest));
            expect(s.manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}${m.platform?.variant ? `/${m.platform.variant}` : ""}`)).toEqual([
              "linux/amd64",
              "linux/arm64/v8",
            ]);
            expect(s.layers).toEqual([]);
            expect(Number(s.referencedSizeBytes)).toBe(image.manifests.reduce((n, m) => n + m.size, 0));
          } else {
            const m = image.manifests[0]!;
            expect(s.config?.digest).toBe(m.config.digest);
            expect(s.config?.mediaType).toBe(m.config.mediaType);
            expect(s.layers.map((l) => [l.digest, Number(l.sizeBytes), l.mediaType])).toEqual(m.layers.map((l) => [l.digest, l.size, l.mediaType]));
            expect(Number(s.referencedSizeBytes)).toBe(m.config.size + m.layers.reduce((n, l) => n + l.size, 0));
          }
        },
      );

      it("GetBlob streams the config and layers byte for byte, each verified", async () => {
        const m = images.docker.manifests[0]!;
        for (const blob of [m.config, ...m.layers]) {
          const { messages, bytes, error } = await readBlob(client.getBlob({ repository: `up-${auth}/${REPOS.docker}`, digest: blob.digest }));
          expect(error).toBeUndefined();
          expect(sha256(bytes)).toBe(blob.digest);
          expect(Number(messages[0]!.sizeBytes)).toBe(blob.size);
        }
      });

      it("a single-component upstream name (testbox) is read as library/testbox", async () => {
        const got = await client.getManifest({ repository: `up-${auth}/library/testbox`, reference: "latest" });
        expect(got.digest).toBe(images.small.digest);
      });
    });

    describe("manifests", () => {
      it("metadata_only answers digest, media type and size without bytes or summary", async () => {
        for (const reference of ["v1", images.index.digest]) {
          const got = await client.getManifest({ repository: `up-none/${REPOS.index}`, reference, metadataOnly: true });
          expect(got.digest).toBe(images.index.digest);
          expect(got.mediaType).toBe(MediaType.ociIndex);
          expect(Number(got.sizeBytes)).toBe(images.index.size);
          expect(got.raw.length).toBe(0);
          expect(got.summary).toBeUndefined();
        }
      });

      it.each(Object.entries(transports))("works over %s", async (_name, make) => {
        const c = createClient(ImageService, make(server.httpUrl));
        const got = await c.getManifest({ repository: `up-none/${REPOS.docker}`, reference: "v1" });
        expect(Buffer.from(got.raw).equals(images.docker.bytes)).toBe(true);
        expect(got.mediaType).toBe(MediaType.dockerManifest);
      });

      it("REST GET /v1/images/{repository}/manifests/{reference} answers the JSON envelope; ?metadata_only=true leaves out raw and summary", async () => {
        const res = await adminFetch(`${server.httpUrl}/v1/images/up-basic/${REPOS.multi}/manifests/v1`);
        expect(res.status).toBe(200);
        expect(res.headers.get("content-type")).toBe("application/json");
        const body = (await res.json()) as {
          digest: string;
          mediaType: string;
          sizeBytes: string;
          raw: string;
          summary: { layers: unknown[]; config: { digest: string } };
        };
        expect(body.digest).toBe(images.multi.digest);
        expect(body.mediaType).toBe(MediaType.ociManifest);
        expect(body.sizeBytes).toBe(String(images.multi.size));
        expect(Buffer.from(body.raw, "base64").equals(images.multi.bytes)).toBe(true);
        expect(body.summary.layers).toHaveLength(3);
        expect(body.summary.config.digest).toBe(images.multi.manifests[0]!.config.digest);

        const head = await adminFetch(`${server.httpUrl}/v1/images/up-none/${REPOS.index}/manifests/${images.index.digest}?metadata_only=true`);
        const meta: unknown = await head.json();
        expect(meta).toEqual({ digest: images.index.digest, mediaType: MediaType.ociIndex, sizeBytes: String(images.index.size) });
      });

      it("bytes that do not match the digest → DATA_LOSS, by digest and by tag", async () => {
        const repository = "up-none/team/damaged-manifest";
        await expectCode(client.getManifest({ repository, reference: broken.manifest.digest }), Code.DataLoss, broken.manifest.digest);
        await expectCode(client.getManifest({ repository, reference: "v1" }), Code.DataLoss, upstreams.none!.host);
        const res = await adminFetch(`${server.httpUrl}/v1/images/${repository}/manifests/${broken.manifest.digest}`);
        expect(res.status).toBe(500);
        expect(((await res.json()) as { code: string }).code).toBe("data_loss");
      });

      it("a malformed manifest from the upstream → UNKNOWN naming the upstream, not a crash", async () => {
        await createRemote("up-malformed", `http://${malformedHost}`);
        await expectCode(client.getManifest({ repository: "up-malformed/team/app", reference: "v1" }), Code.Unknown, malformedHost);
      });
    });

    describe("blobs", () => {
      const big = () => images.multi.manifests[0]!.layers[1]!;
      beforeAll(async () => {
        // Its manifest pulled through (and so cached by digest): GetBlob knows the layer's media type.
        for (const registry of ["up-none", "up-basic"])
          await client.getManifest({ repository: `${registry}/${REPOS.multi}`, reference: images.multi.manifests[0]!.digest });
      });

      it("reports a blob's media type from the manifests that list it, application/octet-stream when none does", async () => {
        const manifest = images.small.manifests[0]!;
        // A registry of its own over the same upstream: nothing pulled through it yet.
        await createRemote("up-media", upstreams.none!.url);
        const blob = (digest: string) => readBlob(client.getBlob({ repository: `up-media/${REPOS.small}`, digest, length: 1n }));
        expect((await blob(manifest.config.digest)).messages[0]!.mediaType).toBe("application/octet-stream");
        await client.getManifest({ repository: `up-media/${REPOS.small}`, reference: manifest.digest });
        expect((await blob(manifest.config.digest)).messages[0]!.mediaType).toBe(manifest.config.mediaType);
        expect((await blob(manifest.layers[0]!.digest)).messages[0]!.mediaType).toBe(manifest.layers[0]!.mediaType);
      });

      it.each(Object.entries(transports))("the 64 MiB layer byte for byte over %s, in chunks of at most 1 MiB", async (name, make) => {
        const c = createClient(ImageService, make(baseUrlFor(name, server)));
        const layer = big();
        const { messages, bytes, error } = await readBlob(c.getBlob({ repository: `up-none/${REPOS.multi}`, digest: layer.digest }));
        expect(error).toBeUndefined();
        expect(bytes.length).toBe(layer.size);
        expect(sha256(bytes)).toBe(layer.digest);
        expect(Number(messages[0]!.sizeBytes)).toBe(layer.size);
        expect(messages[0]!.mediaType).toBe(layer.mediaType);
        expect(messages.length).toBeGreaterThanOrEqual(64);
        let offset = 0;
        for (const m of messages) {
          expect(Number(m.offset)).toBe(offset);
          expect(m.data.length).toBeLessThanOrEqual(MiB);
          offset += m.data.length;
        }
        expect(messages.slice(0, -1).every((m) => m.data.length >= 64 * 1024)).toBe(true);
        expect(messages.slice(1).every((m) => m.sizeBytes === 0n && m.mediaType === "")).toBe(true);
      });

      it("an independent gRPC client (@grpc/grpc-js) gets the same bytes", async () => {
        const stub = new GrpcImageService(target(server.grpcUrl), grpc.credentials.createInsecure());
        try {
          const layer = images.multi.manifests[0]!.layers[0]!;
          const stream = (stub as unknown as Record<string, (req: unknown, metadata: grpc.Metadata) => GrpcStream>).GetBlob!(
            { repository: `up-token/${REPOS.multi}`, digest: layer.digest },
            adminMetadata(),
          );
          const chunks: Buffer[] = [];
          for await (const m of stream as AsyncIterable<{ data: Buffer; size_bytes: string }>) chunks.push(m.data);
          expect(sha256(Buffer.concat(chunks))).toBe(layer.digest);
        } finally {
          stub.close();
        }
      });

      it("offset and length read a range (not verifiable, so only its length is checked)", async () => {
        const layer = big();
        const whole = await readFile(layer.path);
        const { messages, bytes } = await readBlob(
          client.getBlob({ repository: `up-none/${REPOS.multi}`, digest: layer.digest, offset: 10n * BigInt(MiB) + 7n, length: 3n * BigInt(MiB) }),
        );
        expect(bytes.equals(whole.subarray(10 * MiB + 7, 13 * MiB + 7))).toBe(true);
        expect(Number(messages[0]!.offset)).toBe(10 * MiB + 7);
        expect(Number(messages[0]!.sizeBytes)).toBe(layer.size);
        // To the end, and a length past the end is cut at the end.
        const tail = await readBlob(
          client.getBlob({ repository: `up-none/${REPOS.multi}`, digest: layer.digest, offset: BigInt(layer.size - 100), length: 1000n }),
        );
        expect(tail.bytes.equals(whole.subarray(layer.size - 100))).toBe(true);
        await expectCode(
          readBlob(client.getBlob({ repository: `up-none/${REPOS.multi}`, digest: layer.digest, offset: BigInt(layer.size) })).then((r) => {
            if (r.error) throw r.error;
          }),
          Code.OutOfRange,
          String(layer.size),
        );
        await expectCode(
          readBlob(client.getBlob({ repository: `up-none/${REPOS.multi}`, digest: layer.digest, offset: -1n })).then((r) => {
            if (r.error) throw r.error;
          }),
          Code.InvalidArgument,
          "offset",
        );
      });

      it("REST streams raw bytes with Content-Length, Content-Type, Docker-Content-Digest, ETag, Accept-Ranges", async () => {
        const layer = big();
        const res = await rawGet(`${server.httpUrl}/v1/images/up-basic/${REPOS.multi}/blobs/${layer.digest}`);
        expect(res.status).toBe(200);
        expect(res.complete).toBe(true);
        expect(res.headers["content-length"]).toBe(String(layer.size));
        expect(res.headers["content-type"]).toBe(layer.mediaType);
        expect(res.headers["docker-content-digest"]).toBe(layer.digest);
        expect(res.headers.etag).toBe(`"${layer.digest}"`);
        expect(res.headers["accept-ranges"]).toBe("bytes");
        expect(sha256(res.body)).toBe(layer.digest);
      });

      it("REST Range: 206 with Content-Range, suffix ranges, 416 past the end, HEAD, If-None-Match", async () => {
        const layer = images.small.manifests[0]!.layers[0]!;
        const whole = await readFile(layer.path);
        const url = `${server.httpUrl}/v1/images/up-none/${REPOS.small}/blobs/${layer.digest}`;
        const part = await rawGet(url, { range: "bytes=100-199" });
        expect(part.status).toBe(206);
        expect(part.headers["content-range"]).toBe(`bytes 100-199/${layer.size}`);
        expect(part.headers["content-length"]).toBe("100");
        expect(part.body.equals(whole.subarray(100, 200))).toBe(true);
        const open = await rawGet(url, { range: "bytes=4000-" });
        expect(open.status).toBe(206);
        expect(open.body.equals(whole.subarray(4000))).toBe(true);
        const suffix = await rawGet(url, { range: "bytes=-50" });
        expect(suffix.status).toBe(206);
        expect(suffix.headers["content-range"]).toBe(`bytes ${layer.size - 50}-${layer.size - 1}/${layer.size}`);
        expect(suffix.body.equals(whole.subarray(layer.size - 50))).toBe(true);
        const past = await rawGet(url, { range: `bytes=${layer.size}-` });
        expect(past.status).toBe(416);
        expect(past.headers["content-range"]).toBe(`bytes */${layer.size}`);
        expect((JSON.parse(past.body.toString()) as { code: string }).code).toBe("out_of_range");

        const head = await adminFetch(url, { method: "HEAD" });
        expect(head.status).toBe(200);
        expect(head.headers.get("content-length")).toBe(String(layer.size));
        expect(head.headers.get("docker-content-digest")).toBe(layer.digest);
        const cached = await adminFetch(url, { headers: { "if-none-match": `"${layer.digest}"` } });
        expect(cached.status).toBe(304);
      });

      it("REST errors before the first byte are JSON errors with their status", async () => {
        const missing = `sha256:${"0".repeat(64)}`;
        const notFound = await adminFetch(`${server.httpUrl}/v1/images/up-none/${REPOS.small}/blobs/${missing}`);
        expect(notFound.status).toBe(404);
        expect(((await notFound.json()) as { code: string }).code).toBe("not_found");
        const bad = await adminFetch(`${server.httpUrl}/v1/images/up-none/${REPOS.small}/blobs/sha256:nothex`);
        expect(bad.status).toBe(400);
        expect(((await bad.json()) as { message: string }).message).toMatch(/digest/);
        const headMissing = await adminFetch(`${server.httpUrl}/v1/images/up-none/${REPOS.small}/blobs/${missing}`, { method: "HEAD" });
        expect(headMissing.status).toBe(404);
      });

      it("a blob damaged on the upstream's disk: Connect ends with DATA_LOSS before the last bytes; REST cuts the transfer short", async () => {
        const layer = broken.blob.manifests[0]!.layers[0]!;
        const repository = "up-none/team/damaged-blob";
        const { bytes, error } = await readBlob(client.getBlob({ repository, digest: layer.digest }));
        expect(error?.code).toBe(Code.DataLoss);
        expect(error?.rawMessage).toContain(layer.digest);
        expect(bytes.length).toBeLessThan(layer.size);

        const res = await rawGet(`${server.httpUrl}/v1/images/${repository}/blobs/${layer.digest}`);
        expect(res.status).toBe(200);
        expect(res.headers["content-length"]).toBe(String(layer.size));
        expect(res.complete).toBe(false);
        expect(res.body.length).toBeLessThan(layer.size);
        // A range cannot be verified: it is served as the upstream has it.
        const range = await readBlob(client.getBlob({ repository, digest: layer.digest, offset: 0n, length: 1024n }));
        expect(range.error).toBeUndefined();
        expect(range.bytes.length).toBe(1024);
      });

      it("backpressure: while a REST client does not read, the service stops reading the upstream", { timeout: 120_000 }, async () => {
        // What may pass while the client is paused: the kernel's socket buffers on the two hops
        // (the upstream's to the service, the service's to the client; Linux grows a receive
        // buffer up to tcp_rmem's maximum for a fast reader: 32 MiB here), and what the service
        // itself holds (its reader, verifier, batches: a few MiB). The layer is far bigger, so a
        // service that kept reading would let it all pass.
        const maxOf = (path: string) => Number(readFileSync(path, "utf8").trim().split(/\s+/).pop());
        const socketBuffers = 2 * (maxOf("/proc/sys/net/ipv4/tcp_rmem") + maxOf("/proc/sys/net/ipv4/tcp_wmem"));
        const bound = socketBuffers + 24 * MiB;
        const image = await largeImage(Math.ceil((bound + 64 * MiB) / MiB), "backpressure");
        const layer = image.manifests[0]!.layers[0]!;
        await pushImage(image, upstreams.none!, "team/backpressure", "v1");
        // A counting TCP relay in front of the real upstream shows how far the service has read.
        let relayed = 0;
        const relay = createNetServer((socket) => {
          const upstream = connectNet(upstreams.none!.port, "127.0.0.1");
          socket.pipe(upstream);
          upstream.on("data", (c: Buffer) => (relayed += c.length));
          upstream.pipe(socket);
          socket.on("error", () => upstream.destroy());
          upstream.on("error", () => socket.destroy());
        });
        await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
        try {
          await createRemote("up-relayed", `http://127.0.0.1:${(relay.address() as AddressInfo).port}`);
          let received = 0;
          const whilePaused: number[] = [];
          await new Promise<void>((resolve, reject) => {
            const req = httpRequest(
              `${server.httpUrl}/v1/images/up-relayed/team/backpressure/blobs/${layer.digest}`,
              { headers: { authorization: ADMIN_AUTHORIZATION } },
              (res) => {
                res.once("data", (c: Buffer) => {
                  received += c.length;
                  res.pause();
                  // Two readings a second apart, once the buffers on the way have had time to fill.
                  setTimeout(() => whilePaused.push(relayed), 1_500);
                  setTimeout(() => {
                    whilePaused.push(relayed);
                    res.on("data", (d: Buffer) => (received += d.length));
                    res.resume();
                  }, 2_500);
                });
                res.on("end", resolve);
                res.on("error", reject);
              },
            );
            req.on("error", reject);
            req.end();
          });
          expect(received).toBe(layer.size);
          const [first, second] = whilePaused as [number, number];
          // Stopped: nothing more passed in the second, and far from all of it had.
          expect(second - first, `${first} then ${second} bytes relayed while paused`).toBeLessThan(MiB);
          expect(second, `bytes relayed while paused (socket buffers ${socketBuffers} B)`).toBeLessThan(bound);
        } finally {
          relay.close();
        }
      });
    });

    describe("HOSTED registries", () => {
      it("serve what skopeo pushed to /v2/: manifests and blobs byte for byte, over Connect and REST", async () => {
        await registries.createRegistry({ registry: { name: "local", kind: RegistryKind.HOSTED } });
        const self = { host: `127.0.0.1:${server.http.port}` };
        await pushImage(images.small, self, "local/team/app", "1.0");
        await pushImage(images.index, self, "local/team/multi", "1.0");

        const small = await client.getManifest({ repository: "local/team/app", reference: "1.0" });
        expect(Buffer.from(small.raw).equals(images.small.bytes)).toBe(true);
        expect(small.digest).toBe(images.small.digest);
        expect(small.summary?.layers.map((l) => l.digest)).toEqual(images.small.manifests[0]!.layers.map((l) => l.digest));
        const index = await client.getManifest({ repository: "local/team/multi", reference: images.index.digest });
        expect(Buffer.from(index.raw).equals(images.index.bytes)).toBe(true);
        expect(index.summary?.manifests).toHaveLength(2);
        const meta = await client.getManifest({ repository: "local/team/multi", reference: "1.0", metadataOnly: true });
        expect([meta.digest, meta.mediaType, Number(meta.sizeBytes), meta.raw.length]).toEqual([images.index.digest, MediaType.ociIndex, images.index.size, 0]);

        const layer = images.small.manifests[0]!.layers[0]!;
        const { bytes, messages } = await readBlob(client.getBlob({ repository: "local/team/app", digest: layer.digest }));
        expect(sha256(bytes)).toBe(layer.digest);
        expect(Number(messages[0]!.sizeBytes)).toBe(layer.size);
        const layerBytes = await readFile(layer.path);
        const restUrl = `${server.httpUrl}/v1/images/local/team/app/blobs/${layer.digest}`;
        const rest = await rawGet(restUrl, { range: "bytes=10-19" });
        expect(rest.status).toBe(206);
        expect(rest.body.equals(layerBytes.subarray(10, 20))).toBe(true);
        // REST reads of stored blobs come straight from the content store: whole, suffix, past the end.
        const wholeRest = await rawGet(restUrl);
        expect([wholeRest.status, wholeRest.complete, wholeRest.headers["content-length"], wholeRest.headers["docker-content-digest"]]).toEqual([
          200,
          true,
          String(layer.size),
          layer.digest,
        ]);
        expect(wholeRest.body.equals(layerBytes)).toBe(true);
        const suffix = await rawGet(restUrl, { range: "bytes=-7" });
        expect([suffix.status, suffix.headers["content-range"]]).toEqual([206, `bytes ${layer.size - 7}-${layer.size - 1}/${layer.size}`]);
        expect(suffix.body.equals(layerBytes.subarray(layer.size - 7))).toBe(true);
        const past = await rawGet(restUrl, { range: `bytes=${layer.size}-` });
        expect([past.status, past.headers["content-range"]]).toEqual([416, `bytes */${layer.size}`]);
        // A 64 MiB layer, many times the store's 4 MiB read size, byte for byte.
        await pushImage(images.multi, self, "local/team/big", "1.0");
        const bigLayer = images.multi.manifests[0]!.layers.reduce((a, b) => (b.size > a.size ? b : a));
        const big = await rawGet(`${server.httpUrl}/v1/images/local/team/big/blobs/${bigLayer.digest}`);
        expect([big.status, big.complete, big.body.length]).toEqual([200, true, bigLayer.size]);
        expect(sha256(big.body)).toBe(bigLayer.digest);
        const envelope = (await (await adminFetch(`${server.httpUrl}/v1/images/local/team/app/manifests/1.0`)).json()) as { raw: string };
        expect(Buffer.from(envelope.raw, "base64").equals(images.small.bytes)).toBe(true);

        await expectCode(client.getManifest({ repository: "local/team/app", reference: "2.0" }), Code.NotFound, "local/team/app:2.0");
        await expectCode(client.getManifest({ repository: "local/team/nothing", reference: "1.0" }), Code.NotFound, "team/nothing");
        await expectCode(
          readBlob(client.getBlob({ repository: "local/team/app", digest: images.index.manifests[0]!.layers[0]!.digest })).then((r) => {
            if (r.error) throw r.error;
          }),
          Code.NotFound,
          "not found",
        );
      });

      it("REST raw route: GetBlob's offset and length from the query; unknown or bad parameters are 400", async () => {
        // Found by a probe: the route ignored its query, so ?offset=1&length=1 answered the whole blob.
        await registries.createRegistry({ registry: { name: "parts", kind: RegistryKind.HOSTED } });
        await pushImage(images.small, { host: `127.0.0.1:${server.http.port}` }, "parts/team/app", "1.0");
        const layer = images.small.manifests[0]!.layers[0]!;
        const whole = await readFile(layer.path);
        const url = `${server.httpUrl}/v1/images/parts/team/app/blobs/${layer.digest}`;
        for (const [query, from, to] of [
          ["offset=10&length=10", 10, 20],
          ["offset=10", 10, layer.size],
          ["length=5", 0, 5],
          [`offset=${layer.size - 3}&length=100`, layer.size - 3, layer.size],
        ] as const) {
          const res = await rawGet(`${url}?${query}`);
          expect([res.status, res.headers["content-length"], res.headers.etag], query).toEqual([200, String(to - from), undefined]);
          expect(res.body.equals(whole.subarray(from, to)), query).toBe(true);
        }
        for (const [query, headers, status] of [
          ["offset=-1", {}, 400],
          ["offset=abc", {}, 400],
          ["bogus=1", {}, 400],
          ["offset=1&offset=2", {}, 400],
          ["offset=10&length=10", { range: "bytes=0-1" }, 400],
          [`offset=${layer.size}`, {}, 416],
        ] as const) {
          const res = await rawGet(`${url}?${query}`, headers);
          expect(res.status, query).toBe(status);
          expect(res.body.length, query).toBeGreaterThan(0);
          expect(JSON.parse(res.body.toString()) as { code: string }, query).toHaveProperty("code");
        }
      });

      // One class of input, both routes that serve blob bytes over plain HTTP: every Range and
      // conditional request gets the same answer from /v2/ and from the REST raw route, and
      // positions of any size (valid HTTP) are read as positions, never a failure.
      it("Range and conditional requests of every kind: the same answer on /v2/ and the REST raw route", async () => {
        await registries.createRegistry({ registry: { name: "ranges", kind: RegistryKind.HOSTED } });
        await pushImage(images.small, { host: `127.0.0.1:${server.http.port}` }, "ranges/team/app", "1.0");
        const layer = images.small.manifests[0]!.layers[0]!;
        const whole = await readFile(layer.path);
        const size = layer.size;
        const etag = `"${layer.digest}"`;
        const huge = "9".repeat(400);
        type Want = { status: number; from?: number; to?: number };
        const cases: [string, Record<string, string>, Want][] = [
          ["a range", { range: "bytes=10-19" }, { status: 206, from: 10, to: 19 }],
          ["an open range", { range: "bytes=100-" }, { status: 206, from: 100, to: size - 1 }],
          ["a suffix", { range: "bytes=-7" }, { status: 206, from: size - 7, to: size - 1 }],
          ["a last position past the end", { range: `bytes=0-${size + 5}` }, { status: 206, from: 0, to: size - 1 }],
          ["a last position of 400 digits", { range: `bytes=5-${huge}` }, { status: 206, from: 5, to: size - 1 }],
          ["a last position of 2^53 - 1", { range: "bytes=0-9007199254740991" }, { status: 206, from: 0, to: size - 1 }],
          ["a suffix of 400 digits", { range: `bytes=-${huge}` }, { status: 206, from: 0, to: size - 1 }],
          ["a first position at the end", { range: `bytes=${size}-` }, { status: 416 }],
          ["a first position of 2^53", { range: "bytes=9007199254740992-" }, { status: 416 }],
          ["a first position of 400 digits", { range: `bytes=1${huge}-` }, { status: 416 }],
          ["several ranges (may be ignored)", { range: "bytes=0-1,5-6" }, { status: 200 }],
          ["If-Range with this tag", { range: "bytes=10-19", "if-range": etag }, { status: 206, from: 10, to: 19 }],
          ["If-Range with another tag", { range: "bytes=10-19", "if-range": `"sha256:${"0".repeat(64)}"` }, { status: 200 }],
          ["If-Range with a weak tag", { range: "bytes=10-19", "if-range": `W/${etag}` }, { status: 200 }],
          ["If-Range with a date", { range: "bytes=10-19", "if-range": "Tue, 01 Dec 2026 00:00:00 GMT" }, { status: 200 }],
          ["If-None-Match with this tag", { "if-none-match": etag }, { status: 304 }],
          ["If-None-Match with it weak", { "if-none-match": `W/${etag}` }, { status: 304 }],
          ["If-None-Match with a list", { "if-none-match": `"x", ${etag}` }, { status: 304 }],
          ["If-None-Match: *", { "if-none-match": "*" }, { status: 304 }],
          ["If-None-Match with this tag, and a range", { "if-none-match": etag, range: "bytes=0-3" }, { status: 304 }],
          ["If-None-Match with another tag", { "if-none-match": '"other"' }, { status: 200 }],
        ];
        const routes = {
          "/v2/": `${server.httpUrl}/v2/ranges/team/app/blobs/${layer.digest}`,
          REST: `${server.httpUrl}/v1/images/ranges/team/app/blobs/${layer.digest}`,
        };
        for (const [route, url] of Object.entries(routes)) {
          for (const [what, headers, want] of cases) {
            for (const method of ["GET", "HEAD"]) {
              const label = `${route} ${method} ${what}`;
              const res = await rawGet(url, headers, method);
              // HEAD sends no bytes, so a range does not apply: 200, or 304 when the client has them.
              const status = method === "HEAD" && want.status !== 304 ? 200 : want.status;
              expect(res.status, label).toBe(status);
              if (status === 304) {
                expect(res.body.length, label).toBe(0);
                expect(res.headers.etag, label).toBe(etag);
              } else if (status === 416) {
                expect(res.headers["content-range"], label).toBe(`bytes */${size}`);
              } else {
                expect(res.headers.etag, label).toBe(etag);
                if (status === 206) {
                  expect(res.headers["content-range"], label).toBe(`bytes ${want.from}-${want.to}/${size}`);
                  expect(res.body.equals(whole.subarray(want.from, want.to! + 1)), label).toBe(true);
                } else {
                  expect(res.headers["content-length"], label).toBe(String(size));
                  if (method === "GET") expect(sha256(res.body), label).toBe(layer.digest);
                  else expect(res.body.length, label).toBe(0);
                }
              }
            }
          }
        }
      });
    });

    describe("errors", () => {
      it("unknown registry, repository, tag or digest → NOT_FOUND; names off the grammar → INVALID_ARGUMENT naming the field", async () => {
        await expectCode(client.getManifest({ repository: "nowhere/team/app", reference: "v1" }), Code.NotFound, '"nowhere"');
        await expectCode(client.getManifest({ repository: "up-none/team/unknown", reference: "v1" }), Code.NotFound);
        await expectCode(client.getManifest({ repository: `up-none/${REPOS.small}`, reference: "v9" }), Code.NotFound);
        await expectCode(client.getManifest({ repository: `up-none/${REPOS.small}`, reference: `sha256:${"1".repeat(64)}` }), Code.NotFound);
        await expectCode(client.getManifest({ repository: "up-none/Team/app", reference: "v1" }), Code.InvalidArgument, "repository");
        await expectCode(client.getManifest({ repository: "up-none/app", reference: "v1" }), Code.InvalidArgument, "repository");
        await expectCode(client.getManifest({ repository: `up-none/${REPOS.small}`, reference: "sha256:abc" }), Code.InvalidArgument, "reference");
      });

      it("an upstream nobody listens on → UNAVAILABLE naming the host; PingRegistry says unreachable", async () => {
        const port = await freePort();
        const r = await createRemote("up-gone", `http://127.0.0.1:${port}`);
        await expectCode(client.getManifest({ repository: "up-gone/team/app", reference: "v1" }), Code.Unavailable, `127.0.0.1:${port}`);
        const ping = await registries.pingRegistry({ id: r.id });
        expect(ping.reachable).toBe(false);
        expect(ping.authenticated).toBe(false);
        expect(ping.message).toContain(`127.0.0.1:${port}`);
      });

      it("a wrong password → UNAUTHENTICATED (Basic and token auth); PingRegistry: reachable, not authenticated", async () => {
        for (const auth of ["basic", "token"] as const) {
          const u = upstreams[auth]!;
          const r = await createRemote(`up-wrong-${auth}`, u.url, { username: u.credentials!.username, password: "not-the-password" });
          await expectCode(client.getManifest({ repository: `up-wrong-${auth}/${REPOS.small}`, reference: "v1" }), Code.Unauthenticated, u.host);
          const ping = await registries.pingRegistry({ id: r.id });
          expect(ping).toMatchObject({ reachable: true, authenticated: false, status: 401, authScheme: auth === "basic" ? "basic" : "bearer" });
          expect(ping.message).not.toContain("not-the-password");
        }
      });

      it("PingRegistry of good upstreams: reachable, authenticated, round-trip time", async () => {
        for (const auth of ["none", "basic", "token"] as const) {
          const ping = await registries.pingRegistry({ id: remote[auth]! });
          expect(ping).toMatchObject({
            reachable: true,
            authenticated: true,
            status: 200,
            authScheme: auth === "none" ? "" : auth === "basic" ? "basic" : "bearer",
          });
          expect(ping.roundTripMs).toBeGreaterThan(0);
        }
      });

      it("a hung upstream → DEADLINE_EXCEEDED naming the host; a client deadline is honoured too", async () => {
        await createRemote("up-frozen", frozen.url);
        await frozen.freeze();
        try {
          // SIGSTOP lands asynchronously: wait until the registry really stops answering.
          for (;;) {
            const answered = await fetch(`${frozen.url}/v2/`, { signal: AbortSignal.timeout(300) }).then(
              (r) => r.arrayBuffer().then(() => true),
              () => false,
            );
            if (!answered) break;
          }
          await expectCode(client.getManifest({ repository: "up-frozen/team/small", reference: "v1" }), Code.DeadlineExceeded, frozen.host);
          await expectCode(client.getManifest({ repository: "up-frozen/team/small", reference: "v1" }, { timeoutMs: 300 }), Code.DeadlineExceeded);
        } finally {
          frozen.thaw();
        }
        const got = await client.getManifest({ repository: "up-frozen/team/small", reference: "v1" });
        expect(got.digest).toBe(images.small.digest);
      });

      it("a HOSTED registry where a REMOTE one is needed (ping, sync) → FAILED_PRECONDITION", async () => {
        const hosted = await registries.createRegistry({ registry: { name: unique("hosted"), kind: RegistryKind.HOSTED } });
        await expectCode(registries.pingRegistry({ id: hosted.id }), Code.FailedPrecondition, "HOSTED");
        const sync = async () => {
          for await (const _ of registries.syncRegistry({ id: hosted.id })) {
            // nothing expected
          }
        };
        await expectCode(sync(), Code.FailedPrecondition, "HOSTED");
      });
    });
  });
});

// ListReferrers needs no upstream: a HOSTED registry, a subject and its referrers pushed over /v2/.
describe("ImageService.ListReferrers", () => {
  describe.each(databaseKinds())("on %s", (kind) => {
    const SIG = "application/vnd.example.signature.v1";
    const SBOM = "application/vnd.example.sbom.v1";
    let server: TestServer;
    let admin: IdentityClients;
    let images: Client<typeof ImageService>;
    let repository: string;
    let subject: PushedImage;
    let referrers: PushedImage[];
    let namespaceId: string;

    beforeAll(async () => {
      server = await startAuthServer(kind);
      admin = identityClients(server.httpUrl, ADMIN_TOKEN);
      images = createClient(ImageService, createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [adminInterceptor] }));
      const registry = await admin.registries.createRegistry({ registry: { name: unique("hosted"), kind: RegistryKind.HOSTED } });
      namespaceId = (await admin.namespaces.createNamespace({ namespace: { registryId: registry.id, name: "team" } })).id;
      repository = `${registry.name}/team/app`;
      const v2 = new RegistryClient(server.httpUrl);
      subject = await v2.pushImage(repository, "1.0");
      const other = await v2.pushImage(repository, "2.0");
      referrers = [];
      for (const options of [{ artifactType: SIG, annotations: { "org.example.signer": "ci" } }, { artifactType: SIG }, { artifactType: SBOM }]) {
        const referrer = makeImage({ ...options, layerBytes: 64, subject: subject.descriptor });
        for (const blob of referrer.blobs) await v2.uploadBlob(repository, blob);
        expect((await v2.putManifest(repository, referrer.digest, referrer.bytes, referrer.mediaType)).status).toBe(201);
        referrers.push(referrer);
      }
      // A referrer of another image is not one of this image's.
      const elsewhere = makeImage({ artifactType: SIG, layerBytes: 64, subject: other.descriptor });
      for (const blob of elsewhere.blobs) await v2.uploadBlob(repository, blob);
      expect((await v2.putManifest(repository, elsewhere.digest, elsewhere.bytes, elsewhere.mediaType)).status).toBe(201);
    });
    afterAll(async () => {
      await server?.stop();
    });

    const byDigest = (list: PushedImage[]) => [...list].sort((a, b) => (a.digest < b.digest ? -1 : 1));

    it("lists the manifests whose subject is the image, in digest order, as descriptors", async () => {
      const got = await images.listReferrers({ repository, digest: subject.digest });
      expect(got.nextPageToken).toBe("");
      expect(got.referrers.map((d) => d.digest)).toEqual(byDigest(referrers).map((r) => r.digest));
      const signed = got.referrers.find((d) => d.digest === referrers[0]!.digest)!;
      expect(signed.mediaType).toBe(MT.ociManifest);
      expect(signed.sizeBytes).toBe(BigInt(referrers[0]!.bytes.length));
      expect(signed.artifactType).toBe(SIG);
      expect(signed.annotations).toEqual({ "org.example.signer": "ci" });
      // What the OCI referrers API on /v2/ answers for the same image.
      const oci = (await (await adminFetch(`${server.httpUrl}/v2/${repository}/referrers/${subject.digest}`)).json()) as { manifests: { digest: string }[] };
      expect(oci.manifests.map((m) => m.digest)).toEqual(got.referrers.map((d) => d.digest));
      // An image nothing refers to: an empty list.
      const lonely = await images.listReferrers({ repository, digest: referrers[0]!.digest });
      expect(lonely.referrers).toEqual([]);
    });

    it("filters by artifact type", async () => {
      const sigs = await images.listReferrers({ repository, digest: subject.digest, artifactType: SIG });
      expect(sigs.referrers.map((d) => d.digest)).toEqual(byDigest(referrers.slice(0, 2)).map((r) => r.digest));
      const sboms = await images.listReferrers({ repository, digest: subject.digest, artifactType: SBOM });
      expect(sboms.referrers.map((d) => d.digest)).toEqual([referrers[2]!.digest]);
      expect((await images.listReferrers({ repository, digest: subject.digest, artifactType: "application/vnd.none" })).referrers).toEqual([]);
    });

    it("pages with page tokens bound to the request", async () => {
      const seen: string[] = [];
      let pageToken = "";
      for (let pages = 0; ; pages++) {
        expect(pages).toBeLessThan(referrers.length);
        const page = await images.listReferrers({ repository, digest: subject.digest, pageSize: 1, pageToken });
        expect(page.referrers).toHaveLength(1);
        seen.push(page.referrers[0]!.digest);
        if (page.nextPageToken === "") break;
        pageToken = page.nextPageToken;
      }
      expect(seen).toEqual(byDigest(referrers).map((r) => r.digest));
      const first = await images.listReferrers({ repository, digest: subject.digest, pageSize: 1 });
      await expectCode(
        images.listReferrers({ repository, digest: subject.digest, artifactType: SIG, pageSize: 1, pageToken: first.nextPageToken }),
        Code.InvalidArgument,
        "page_token",
      );
      await expectCode(
        images.listReferrers({ repository, digest: referrers[0]!.digest, pageSize: 1, pageToken: first.nextPageToken }),
        Code.InvalidArgument,
        "page_token",
      );
      const forged = Buffer.from(first.nextPageToken, "base64url");
      forged.writeUInt8(forged.readUInt8(0) ^ 1, 0);
      await expectCode(
        images.listReferrers({ repository, digest: subject.digest, pageToken: forged.toString("base64url") }),
        Code.InvalidArgument,
        "page_token",
      );
      await expectCode(images.listReferrers({ repository, digest: subject.digest, pageSize: -1 }), Code.InvalidArgument, "page_size");
    });

    it("unknown image → NOT_FOUND, bad digest → INVALID_ARGUMENT", async () => {
      await expectCode(images.listReferrers({ repository: repository.replace("/app", "/nothing"), digest: subject.digest }), Code.NotFound);
      await expectCode(images.listReferrers({ repository, digest: sha256(Buffer.from("never pushed")) }), Code.NotFound);
      await expectCode(images.listReferrers({ repository, digest: "sha256:xyz" }), Code.InvalidArgument, "digest");
      await expectCode(images.listReferrers({ repository, digest: "1.0" }), Code.InvalidArgument, "digest");
      await expectCode(images.listReferrers({ repository: "no-such-shape", digest: subject.digest }), Code.InvalidArgument, "repository");
    });

    it("needs what GetManifest needs: a caller without pull access is refused alike, a reader is served", async () => {
      const stranger = await createAccount(admin, server.httpUrl);
      const strangerImages = createClient(
        ImageService,
        createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [bearer(stranger.token)] }),
      );
      const refused = await expectCode(strangerImages.getManifest({ repository, reference: subject.digest }), Code.NotFound).catch(() =>
        expectCode(strangerImages.getManifest({ repository, reference: subject.digest }), Code.PermissionDenied),
      );
      await expectCode(strangerImages.listReferrers({ repository, digest: subject.digest }), refused.code);
      await bindRole(admin, stranger.id, "reader", { namespaceId });
      const got = await strangerImages.listReferrers({ repository, digest: subject.digest });
      expect(got.referrers).toHaveLength(referrers.length);
    });

    it("is served over REST", async () => {
      const res = await adminFetch(`${server.httpUrl}/v1/images/${repository}/referrers/${subject.digest}?artifactType=${encodeURIComponent(SBOM)}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { referrers: { digest: string; artifactType: string }[] };
      expect(body.referrers).toEqual([expect.objectContaining({ digest: referrers[2]!.digest, artifactType: SBOM })]);
    });
  });
});
