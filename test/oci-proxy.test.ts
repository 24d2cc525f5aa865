// The pull-through proxy for REMOTE registries, against a real upstream (Debian's docker-registry,
// CNCF Distribution 2.8) with images pushed by skopeo: pulls through the service byte for byte,
// cached content served with the upstream gone, tags always asked upstream, the upstream's tag
// list, corrupt upstream content never cached, and pushes refused.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { ImageService } from "../gen/artifact/v1/image_pb.js";
import { FilesystemDriver } from "../src/content/filesystem.js";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import { catalogClients, unique } from "./support/clients.js";
import { adminFetch } from "./support/credentials.js";
import { databaseKinds } from "./support/database.js";
import { startDistribution, type Distribution } from "./support/distribution.js";
import { dockerSchema2Image, fileDigest, largeImage, multiLayerImage, multiPlatformIndex, smallImage, type BuiltImage } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { expectOciError, RegistryClient, sha256 } from "./support/registry-client.js";
import { dockerRef, pullImage, pushImage, skopeoCopy, skopeoInspectRaw, skopeoListTags, type RegistryEndpoint } from "./support/skopeo.js";
import { startTestServer, transports, type TestServer } from "./support/server.js";

const ready = havePeers("test/oci-proxy.test.ts", "skopeo", "docker-registry");

describe.skipIf(!ready).each(databaseKinds())("pull-through proxy on %s", (kind) => {
  let upstream: Distribution;
  let server: TestServer;
  let reg: RegistryClient;
  let endpoint: RegistryEndpoint;
  let mirror: string;
  let small: BuiltImage;
  let index: BuiltImage;
  let docker: BuiltImage;
  const scratch = mkdtempSync(join(tmpdir(), "artifact-proxy-"));
  let pulls = 0;
  const pullDir = () => join(scratch, `pull-${++pulls}`);

  beforeAll(async () => {
    [upstream, server, small, index, docker] = await Promise.all([
      startDistribution(),
      startTestServer(kind),
      smallImage("proxy"),
      multiPlatformIndex("proxy"),
      dockerSchema2Image("proxy"),
    ]);
    await pushImage(small, upstream, "team/app", "1.0");
    await pushImage(small, upstream, "testbox", "latest");
    await pushImage(index, upstream, "team/multi", "1.0");
    await pushImage(docker, upstream, "org/team/docker", "1.0");
    reg = new RegistryClient(server.httpUrl);
    endpoint = { host: `127.0.0.1:${server.http.port}` };
    mirror = unique("mirror");
    const c = catalogClients(transports["connect+json over HTTP/1.1"]!(server.httpUrl));
    await c.registries.createRegistry({ registry: { name: mirror, kind: RegistryKind.REMOTE, url: upstream.url } });
  });
  afterAll(async () => {
    await server?.stop();
    await upstream?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  /** Runs `body` with the upstream killed, and brings it back afterwards whatever happens. */
  async function withUpstreamDown(body: () => Promise<void>): Promise<void> {
    await upstream.kill();
    try {
      await body();
    } finally {
      await upstream.restart();
    }
  }

  async function expectPulled(dir: string, image: BuiltImage, transport: "oci" | "dir"): Promise<void> {
    for (const m of image.manifests) {
      for (const blob of [m.config, ...m.layers]) {
        const hex = blob.digest.split(":")[1]!;
        expect(await fileDigest(transport === "oci" ? join(dir, "blobs", "sha256", hex) : join(dir, hex)), blob.digest).toBe(blob.digest);
      }
    }
  }

  it("pulls an image through with skopeo, byte for byte, and records the proxied repository", async () => {
    const repo = `${mirror}/team/app`;
    expect((await skopeoInspectRaw(dockerRef(endpoint, repo, "1.0"))).equals(small.bytes)).toBe(true);
    const dir = pullDir();
    const pulled = await pullImage(endpoint, repo, "1.0", { dir, transport: "oci" });
    expect(pulled.digest).toBe(small.digest);
    await expectPulled(dir, small, "oci");
    const image = await server.store.images.resolve(mirror, "team", "app");
    expect(image?.repositoryId).toBeDefined();
    expect(image?.upstreamName).toBe("team/app");
    // The cache commits after the last byte reached the client: it may still be at it.
    for (const blob of small.blobs)
      await expect.poll(() => server.content.stat(blob.digest), { message: `cached ${blob.digest}` }).toEqual({ size: blob.size });
  });

  it("maps a single-component upstream name to namespace library", async () => {
    const repo = `${mirror}/library/testbox`;
    const dir = pullDir();
    expect((await pullImage(endpoint, repo, "latest", { dir, transport: "oci" })).digest).toBe(small.digest);
    expect((await server.store.images.resolve(mirror, "library", "testbox"))?.upstreamName).toBe("testbox");
  });

  it("pulls a two-platform index with --all and a Docker schema2 image from a nested repository", async () => {
    const dir = pullDir();
    expect((await pullImage(endpoint, `${mirror}/team/multi`, "1.0", { dir, transport: "oci" }, { all: true })).digest).toBe(index.digest);
    await expectPulled(dir, index, "oci");
    expect((await readFile(join(dir, "blobs", "sha256", index.digest.split(":")[1]!))).equals(index.bytes)).toBe(true);

    const dockerDir = pullDir();
    const pulled = await pullImage(endpoint, `${mirror}/org/team/docker`, "1.0", { dir: dockerDir, transport: "dir" });
    expect(pulled.digest).toBe(docker.digest);
    expect((await readFile(join(dockerDir, "manifest.json"))).equals(docker.bytes)).toBe(true);
    await expectPulled(dockerDir, docker, "dir");
    expect((await server.store.images.resolve(mirror, "org", "team/docker"))?.upstreamName).toBe("org/team/docker");
  });

  it("streams a 64 MiB layer through while caching it, and serves it from the cache afterwards", async () => {
    const big = await multiLayerImage("proxy");
    await pushImage(big, upstream, "team/big", "1.0");
    const dir = pullDir();
    expect((await pullImage(endpoint, `${mirror}/team/big`, "1.0", { dir, transport: "oci" })).digest).toBe(big.digest);
    await expectPulled(dir, big, "oci");
    const layer = big.manifests[0]!.layers[1]!;
    // The cache commits after the last byte reached the client: it may still be at it.
    await expect.poll(() => server.content.stat(layer.digest)).toEqual({ size: layer.size });
    await withUpstreamDown(async () => {
      const again = pullDir();
      expect((await pullImage(endpoint, `${mirror}/team/big`, big.digest, { dir: again, transport: "oci" })).digest).toBe(big.digest);
      await expectPulled(again, big, "oci");
    });
  });

  it("serves a second pull by digest from the cache with the upstream gone", async () => {
    await withUpstreamDown(async () => {
      const dir = pullDir();
      expect((await pullImage(endpoint, `${mirror}/team/app`, small.digest, { dir, transport: "oci" })).digest).toBe(small.digest);
      await expectPulled(dir, small, "oci");
      const indexDir = pullDir();
      expect((await pullImage(endpoint, `${mirror}/team/multi`, index.digest, { dir: indexDir, transport: "oci" }, { all: true })).digest).toBe(index.digest);
      await expectPulled(indexDir, index, "oci");
      // Ranges of a cached blob are served too.
      const layer = small.manifests[0]!.layers[0]!;
      const part = await reg.req("GET", `/v2/${mirror}/team/app/blobs/${layer.digest}`, { headers: { range: "bytes=0-9" } });
      expect(part.status).toBe(206);
      expect(part.body.equals((await readFile(layer.path)).subarray(0, 10))).toBe(true);
    });
  });

  it("lets ImageService.GetBlob (Connect and REST) read what the pull-through cached, upstream gone", async () => {
    const layer = small.manifests[0]!.layers[0]!;
    const bytes = await readFile(layer.path);
    // Cached by the skopeo pulls above; GetBlob read it from the upstream before.
    expect(await server.content.stat(layer.digest)).toEqual({ size: layer.size });
    const images = createClient(ImageService, transports["connect+proto over HTTP/2"]!(server.httpUrl));
    await withUpstreamDown(async () => {
      const chunks: Uint8Array[] = [];
      for await (const message of images.getBlob({ repository: `${mirror}/team/app`, digest: layer.digest })) chunks.push(message.data);
      expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
      const rest = await adminFetch(`${server.httpUrl}/v1/images/${mirror}/team/app/blobs/${layer.digest}`, { headers: { range: "bytes=2-5" } });
      expect(rest.status).toBe(206);
      expect(Buffer.from(await rest.arrayBuffer()).equals(bytes.subarray(2, 6))).toBe(true);
      // Not cached: still the upstream's, which is down.
      const missing = `sha256:${"a".repeat(64)}`;
      const err = await (async () => {
        for await (const _ of images.getBlob({ repository: `${mirror}/team/app`, digest: missing }));
      })().catch((e: unknown) => e);
      expect(ConnectError.from(err).code).toBe(Code.Unavailable);
    });
  });

  it("fills the cache on a cold GetBlob as a /v2/ pull does: the second read needs no upstream", async () => {
    const fresh = await smallImage("proxy-getblob");
    await pushImage(fresh, upstream, "team/getblob", "1.0");
    const layer = fresh.manifests[0]!.layers[0]!;
    const bytes = await readFile(layer.path);
    const repository = `${mirror}/team/getblob`;
    const images = createClient(ImageService, transports["connect+proto over HTTP/2"]!(server.httpUrl));
    const read = async (digest: string, options: { offset?: bigint; length?: bigint } = {}) => {
      const chunks: Uint8Array[] = [];
      for await (const message of images.getBlob({ repository, digest, ...options }, { timeoutMs: 5_000 })) chunks.push(message.data);
      return Buffer.concat(chunks);
    };
    // A part of a blob not cached yet is read directly from the upstream and not kept.
    expect((await read(layer.digest, { offset: 3n, length: 10n })).equals(bytes.subarray(3, 13))).toBe(true);
    expect(await server.content.stat(layer.digest)).toBeUndefined();
    expect(await server.store.images.resolve(mirror, "team", "getblob").then((i) => i?.repositoryId)).toBeUndefined();

    expect((await read(layer.digest)).equals(bytes)).toBe(true);
    expect(await server.content.stat(layer.digest)).toEqual({ size: layer.size });
    const manifest = await images.getManifest({ repository, reference: fresh.digest });
    expect(Buffer.from(manifest.raw).equals(fresh.bytes)).toBe(true);
    const image = await server.store.images.resolve(mirror, "team", "getblob");
    expect(image?.upstreamName).toBe("team/getblob");
    expect(await server.store.images.getManifest(image!.repositoryId!, { digest: fresh.digest })).toBeDefined();

    // A frozen upstream accepts connections and never answers: anything asked of it would hit the deadline.
    await upstream.freeze();
    try {
      expect((await read(layer.digest)).equals(bytes)).toBe(true);
      const rest = await adminFetch(`${server.httpUrl}/v1/images/${repository}/blobs/${layer.digest}`, { signal: AbortSignal.timeout(5_000) });
      expect(Buffer.from(await rest.arrayBuffer()).equals(bytes)).toBe(true);
      const again = await images.getManifest({ repository, reference: fresh.digest }, { timeoutMs: 5_000 });
      expect(Buffer.from(again.raw).equals(fresh.bytes)).toBe(true);
    } finally {
      upstream.thaw();
    }
  });

  it("fails a pull by tag with a clear error while the upstream is down: tags are never cached", async () => {
    await withUpstreamDown(async () => {
      const res = await reg.req("GET", `/v2/${mirror}/team/app/manifests/1.0`);
      expectOciError(res, 503, "UNAVAILABLE", new RegExp(`upstream ${upstream.host.replace(/\./g, "\\.")}`));
      expect((await reg.req("HEAD", `/v2/${mirror}/team/app/manifests/1.0`)).status).toBe(503);
      expectOciError(await reg.req("GET", `/v2/${mirror}/team/app/tags/list`), 503, "UNAVAILABLE");
      await expect(skopeoInspectRaw(dockerRef(endpoint, `${mirror}/team/app`, "1.0"), { timeoutMs: 60_000 })).rejects.toThrow(
        /refused the connection|UNAVAILABLE|503/,
      );
    });
  });

  it("asks the upstream what a tag means on every pull", async () => {
    const next = await smallImage("proxy-next");
    await pushImage(next, upstream, "team/moving", "stable");
    const first = await reg.req("GET", `/v2/${mirror}/team/moving/manifests/stable`);
    expect(first.headers.get("docker-content-digest")).toBe(next.digest);
    await pushImage(small, upstream, "team/moving", "stable");
    const second = await reg.req("GET", `/v2/${mirror}/team/moving/manifests/stable`);
    expect(second.headers.get("docker-content-digest")).toBe(small.digest);
    expect(second.body.equals(small.bytes)).toBe(true);
    const head = await reg.req("HEAD", `/v2/${mirror}/team/moving/manifests/stable`);
    expect(head.status).toBe(200);
    expect(head.headers.get("docker-content-digest")).toBe(small.digest);
    expect(head.headers.get("content-length")).toBe(String(small.bytes.length));
  });

  it("lists the upstream's tags, in order and paged", async () => {
    await skopeoCopy(small.ref, dockerRef(upstream, "team/tagged", "b"));
    await skopeoCopy(small.ref, dockerRef(upstream, "team/tagged", "a"));
    await skopeoCopy(small.ref, dockerRef(upstream, "team/tagged", "c"));
    const all = await reg.req("GET", `/v2/${mirror}/team/tagged/tags/list`);
    expect(all.json).toEqual({ name: `${mirror}/team/tagged`, tags: ["a", "b", "c"] });
    const first = await reg.req("GET", `/v2/${mirror}/team/tagged/tags/list?n=2`);
    expect(first.json?.tags).toEqual(["a", "b"]);
    expect(first.headers.get("link")).toBe(`</v2/${mirror}/team/tagged/tags/list?n=2&last=b>; rel="next"`);
    const rest = await reg.req("GET", `/v2/${mirror}/team/tagged/tags/list?n=2&last=b`);
    expect(rest.json?.tags).toEqual(["c"]);
    expect(rest.headers.get("link")).toBeNull();
    expect((await skopeoListTags(`docker://${endpoint.host}/${mirror}/team/tagged`)).sort()).toEqual(["a", "b", "c"]);
    expectOciError(await reg.req("GET", `/v2/${mirror}/team/nothing/tags/list`), 404, "NAME_UNKNOWN");
    expectOciError(await reg.req("GET", `/v2/${mirror}/team/tagged/manifests/nope`), 404, "MANIFEST_UNKNOWN");
    expectOciError(await reg.req("GET", `/v2/${mirror}/team/tagged/blobs/sha256:${"0".repeat(64)}`), 404, "BLOB_UNKNOWN");
  });

  it("never caches a corrupt upstream blob and ends its response in an error", async () => {
    const bad = await smallImage("proxy-corrupt");
    await pushImage(bad, upstream, "team/bad", "1.0");
    const layer = bad.manifests[0]!.layers[0]!;
    await upstream.corruptBlob(layer.digest, "flip");
    const url = `${server.httpUrl}/v2/${mirror}/team/bad/blobs/${layer.digest}`;
    await expect(adminFetch(url).then((r) => r.arrayBuffer())).rejects.toThrow();
    const image = await server.store.images.resolve(mirror, "team", "bad");
    expect(await server.store.blobs.find(image!.repositoryId!, layer.digest)).toBeUndefined();
    expect(await server.content.stat(layer.digest)).toBeUndefined();
    // A range cannot be checked, so it is refused rather than served from corrupt bytes.
    const part = await reg.req("GET", `/v2/${mirror}/team/bad/blobs/${layer.digest}`, { headers: { range: "bytes=0-9" } });
    expectOciError(part, 502, "UNKNOWN", /digest/);
    await expect(pullImage(endpoint, `${mirror}/team/bad`, "1.0", { dir: pullDir(), transport: "oci" }, { retryTimes: 0 })).rejects.toThrow();
    // Truncated bytes too.
    await upstream.corruptBlob(bad.manifests[0]!.config.digest, "truncate");
    await expect(adminFetch(`${server.httpUrl}/v2/${mirror}/team/bad/blobs/${bad.manifests[0]!.config.digest}`).then((r) => r.arrayBuffer())).rejects.toThrow();
    expect(await server.content.stat(bad.manifests[0]!.config.digest)).toBeUndefined();
  });

  // A big blob takes the fast path: read into lent buffers, relayed and cached in batches, and
  // written to the cache without a second hash (the verifier's end is the only check).
  it("cuts the response to a big blob whose upstream bytes do not match, and caches nothing", async () => {
    const big = await largeImage(20, "proxy-corrupt-big");
    await pushImage(big, upstream, "team/badbig", "1.0");
    const layer = big.manifests[0]!.layers[0]!;
    for (const how of ["flip", "truncate"] as const) {
      await upstream.corruptBlob(layer.digest, how);
      const res = await adminFetch(`${server.httpUrl}/v2/${mirror}/team/badbig/blobs/${layer.digest}`);
      expect(res.status).toBe(200);
      let received = 0;
      const reading = (async () => {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) received += chunk.length;
      })();
      await expect(reading, how).rejects.toThrow();
      expect(received, how).toBeLessThan(layer.size);
      const image = await server.store.images.resolve(mirror, "team", "badbig");
      if (image?.repositoryId) expect(await server.store.blobs.find(image.repositoryId, layer.digest)).toBeUndefined();
      expect(await server.content.stat(layer.digest)).toBeUndefined();
      // The cache's partial file goes with the failure.
      if (server.content instanceof FilesystemDriver) {
        const tmp = join(server.content.root, "tmp");
        await expect.poll(() => readdir(tmp)).toEqual([]);
      }
    }
  });

  it("goes on caching a big blob when the client goes away mid-transfer", async () => {
    const big = await largeImage(20, "proxy-client-gone");
    await pushImage(big, upstream, "team/gone", "1.0");
    const layer = big.manifests[0]!.layers[0]!;
    const controller = new AbortController();
    const res = await adminFetch(`${server.httpUrl}/v2/${mirror}/team/gone/blobs/${layer.digest}`, { signal: controller.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    controller.abort();
    await reader.cancel().catch(() => undefined);
    await expect.poll(() => server.content.stat(layer.digest), { timeout: 20_000 }).toEqual({ size: layer.size });
    const image = await server.store.images.resolve(mirror, "team", "gone");
    await expect.poll(() => server.store.blobs.find(image!.repositoryId!, layer.digest)).toEqual({ size: layer.size });
    // What was kept is the blob: served from the cache with the upstream gone.
    await withUpstreamDown(async () => {
      const again = await reg.req("GET", `/v2/${mirror}/team/gone/blobs/${layer.digest}`);
      expect(again.status).toBe(200);
      expect(sha256(again.body)).toBe(layer.digest);
    });
  });

  it("reuses the buffers it reads big blobs into without mixing their bytes: concurrent cold pulls, one client slow, byte-exact to each client and in the cache", async () => {
    // src/domain/lent-buffers.ts: a buffer given back too early would show here as wrong bytes
    // (the verifier hashes each chunk as it arrives, before any reuse, so only the receiving
    // ends can tell).
    const images = await Promise.all([largeImage(24, "proxy-reuse-a"), largeImage(24, "proxy-reuse-b"), largeImage(12, "proxy-reuse-c")]);
    await Promise.all(images.map((image, i) => pushImage(image, upstream, `team/reuse${i}`, "1.0")));
    const layers = images.map((image) => image.manifests[0]!.layers[0]!);
    const pull = async (i: number, slow: boolean) => {
      const res = await adminFetch(`${server.httpUrl}/v2/${mirror}/team/reuse${i}/blobs/${layers[i]!.digest}`);
      expect(res.status).toBe(200);
      const hash = createHash("sha256");
      let n = 0;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        if (slow && ++n % 16 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return `sha256:${hash.digest("hex")}`;
    };
    expect(await Promise.all([pull(0, true), pull(1, false)])).toEqual([layers[0]!.digest, layers[1]!.digest]);
    // A third after them, on buffers the first two gave back.
    expect(await pull(2, false)).toBe(layers[2]!.digest);
    for (const layer of layers) {
      await expect.poll(() => server.content.stat(layer.digest), { timeout: 20_000 }).toEqual({ size: layer.size });
      const stored = await server.content.read(layer.digest);
      const hash = createHash("sha256");
      for await (const chunk of stored as AsyncIterable<Uint8Array>) hash.update(chunk);
      expect(`sha256:${hash.digest("hex")}`).toBe(layer.digest);
    }
  });

  it("refuses a manifest whose upstream bytes do not match its digest, and caches nothing", async () => {
    const bad = await smallImage("proxy-bad-manifest");
    await pushImage(bad, upstream, "team/badmanifest", "1.0");
    await upstream.corruptBlob(bad.digest, "flip");
    expectOciError(await reg.req("GET", `/v2/${mirror}/team/badmanifest/manifests/${bad.digest}`), 502, "UNKNOWN", new RegExp(bad.digest));
    const image = await server.store.images.resolve(mirror, "team", "badmanifest");
    if (image?.repositoryId) expect(await server.store.images.getManifest(image.repositoryId, { digest: bad.digest })).toBeUndefined();
  });

  it("refuses pushes with UNSUPPORTED, also from skopeo", async () => {
    expectOciError(await reg.req("POST", `/v2/${mirror}/team/app/blobs/uploads/`), 405, "UNSUPPORTED", /REMOTE/);
    expectOciError(await reg.putManifest(`${mirror}/team/app`, "x", small.bytes, small.mediaType), 405, "UNSUPPORTED", /REMOTE/);
    const deleted = await reg.req("DELETE", `/v2/${mirror}/team/app/manifests/${small.digest}`);
    expectOciError(deleted, 405, "UNSUPPORTED");
    expect(deleted.headers.get("allow")).toBe("GET, HEAD");
    await expect(pushImage(small, endpoint, `${mirror}/team/app`, "pushed", { retryTimes: 0 })).rejects.toThrow(/UNSUPPORTED|REMOTE|405|not supported/i);
  });

  it("answers HEAD for blobs and manifests not cached yet from the upstream", async () => {
    const fresh = await smallImage("proxy-head");
    await pushImage(fresh, upstream, "team/head", "1.0");
    const layer = fresh.manifests[0]!.layers[0]!;
    const blob = await reg.req("HEAD", `/v2/${mirror}/team/head/blobs/${layer.digest}`);
    expect(blob.status).toBe(200);
    expect(blob.headers.get("content-length")).toBe(String(layer.size));
    expect(blob.headers.get("docker-content-digest")).toBe(layer.digest);
    const manifest = await reg.req("HEAD", `/v2/${mirror}/team/head/manifests/${fresh.digest}`);
    expect(manifest.status).toBe(200);
    expect(manifest.headers.get("content-length")).toBe(String(fresh.bytes.length));
    expect(sha256(fresh.bytes)).toBe(fresh.digest);
  });
});
