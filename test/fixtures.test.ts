// Proves the test harness itself: locally built images, pushed by Debian's skopeo to Debian's
// docker-registry (CNCF Distribution 2.8) in each auth mode, read back over the registry HTTP API
// with plain fetch and compared byte for byte.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scope, startDistribution, type AuthMode, type Distribution } from "./support/distribution.js";
import {
  ACCEPT_ANY_MANIFEST,
  BIG_LAYER_BYTES,
  buildImage,
  fileDigest,
  MediaType,
  smallImage,
  STANDARD_IMAGE_NAMES,
  standardImage,
  standardImageSpec,
  writeLargeBlob,
  type BuiltImage,
  type StandardImageName,
} from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { seedRepositories } from "./support/registry-seed.js";
import { dockerRef, pullImage, pushImage, skopeoDelete, skopeoInspect, skopeoInspectRaw, skopeoListTags } from "./support/skopeo.js";

const run = promisify(execFile);
const ready = havePeers("test/fixtures.test.ts", "skopeo", "docker-registry", "htpasswd", "openssl");

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

async function streamedDigest(res: Response): Promise<{ digest: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

const repoOf = (image: BuiltImage) => `fixtures/${image.name}`;

/** Checks, over the HTTP API, that `repo:tag` serves exactly the manifests and blobs of `image`. */
async function expectServed(reg: Distribution, repo: string, tag: string, image: BuiltImage): Promise<void> {
  const scopes = [scope.pull(repo)];
  const head = await reg.fetch(`/v2/${repo}/manifests/${tag}`, { method: "HEAD", headers: { accept: ACCEPT_ANY_MANIFEST }, scopes });
  expect(head.status).toBe(200);
  expect(head.headers.get("docker-content-digest")).toBe(image.digest);
  expect(head.headers.get("content-type")).toBe(image.mediaType);
  expect(Number(head.headers.get("content-length"))).toBe(image.size);

  const byTag = await reg.fetch(`/v2/${repo}/manifests/${tag}`, { headers: { accept: ACCEPT_ANY_MANIFEST }, scopes });
  expect(byTag.status).toBe(200);
  expect(Buffer.from(await byTag.arrayBuffer()).equals(image.bytes)).toBe(true);

  for (const m of image.manifests) {
    const res = await reg.fetch(`/v2/${repo}/manifests/${m.digest}`, { headers: { accept: ACCEPT_ANY_MANIFEST }, scopes });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(m.mediaType);
    expect(Buffer.from(await res.arrayBuffer()).equals(m.bytes)).toBe(true);

    const config = await reg.fetch(`/v2/${repo}/blobs/${m.config.digest}`, { scopes });
    expect(Buffer.from(await config.arrayBuffer()).equals(await readFile(m.config.path))).toBe(true);

    for (const layer of m.layers) {
      const res = await reg.fetch(`/v2/${repo}/blobs/${layer.digest}`, { scopes });
      expect(res.status).toBe(200);
      expect(await streamedDigest(res)).toEqual({ digest: layer.digest, size: layer.size });
    }
  }
}

describe.skipIf(!ready)("image builders", () => {
  it.each(STANDARD_IMAGE_NAMES)("%s: blobs are named by their digest and a rebuild gives the same bytes", async (name: StandardImageName) => {
    const image = await standardImage(name);
    for (const m of image.manifests) {
      expect(sha256(m.bytes)).toBe(m.digest);
      for (const b of [m.config, ...m.layers]) expect(await fileDigest(b.path)).toBe(b.digest);
    }
    const dir = mkdtempSync(join(tmpdir(), "artifact-rebuild-"));
    try {
      const again = await buildImage(standardImageSpec(name), join(dir, "image"));
      expect(again.digest).toBe(image.digest);
      expect(again.bytes.equals(image.bytes)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("layers are real tar archives and configs list their diff_ids", async () => {
    const image = await smallImage();
    const [m] = image.manifests;
    const layer = m!.layers[0]!;
    expect(layer.mediaType).toBe(MediaType.ociLayerGzip);
    const { stdout } = await run("tar", ["-tvzf", layer.path]);
    expect(stdout).toMatch(/-rwxr-xr-x root\/root +4219 2020-01-01 00:00 bin\/tool/);
    expect(stdout).toMatch(/usr\/bin\/tool -> \/bin\/tool/);
    expect(sha256(gunzipSync(await readFile(layer.path)))).toBe(layer.diffId);
    const config = JSON.parse(await readFile(m!.config.path, "utf8")) as { rootfs: { diff_ids: string[] }; architecture: string };
    expect(config.rootfs.diff_ids).toEqual([layer.diffId]);
    expect(config.architecture).toBe("amd64");
  });

  it("the multi-layer image carries one 64 MiB uncompressed layer", async () => {
    const image = await standardImage("multi-layer");
    const big = image.manifests[0]!.layers[1]!;
    expect(big.mediaType).toBe(MediaType.ociLayer);
    expect(big.size).toBeGreaterThan(BIG_LAYER_BYTES);
    expect(big.diffId).toBe(big.digest);
    const { stdout } = await run("tar", ["-tvf", big.path]);
    expect(stdout).toContain(`${BIG_LAYER_BYTES} 2020-01-01 00:00 data/random.bin`);
  });

  it("the index names both platforms and the docker image uses docker media types", async () => {
    const index = await standardImage("multi-platform");
    expect(index.mediaType).toBe(MediaType.ociIndex);
    const parsed = JSON.parse(index.bytes.toString()) as { manifests: { digest: string; platform: { architecture: string } }[] };
    expect(parsed.manifests.map((d) => d.platform.architecture)).toEqual(["amd64", "arm64"]);
    expect(parsed.manifests.map((d) => d.digest)).toEqual(index.manifests.map((m) => m.digest));

    const docker = await standardImage("docker-schema2");
    expect(docker.ref).toBe(`dir:${docker.layoutPath}`);
    const manifest = JSON.parse(docker.bytes.toString()) as { mediaType: string; config: { mediaType: string }; layers: { mediaType: string }[] };
    expect(manifest.mediaType).toBe(MediaType.dockerManifest);
    expect(manifest.config.mediaType).toBe(MediaType.dockerConfig);
    expect(manifest.layers.every((l) => l.mediaType === MediaType.dockerLayerGzip)).toBe(true);
    // skopeo reads it as it is.
    expect(sha256(await skopeoInspectRaw(docker.ref))).toBe(docker.digest);
  });

  it("skopeo wrappers refuse any registry off the loopback interface", async () => {
    const image = await smallImage();
    await expect(pushImage(image, { host: "registry.example.com" }, "x/y")).rejects.toThrow(/non-loopback/);
  });

  it("writeLargeBlob streams seeded bytes: same seed, same digest", async () => {
    const dir = mkdtempSync(join(tmpdir(), "artifact-blob-"));
    try {
      const a = await writeLargeBlob(join(dir, "a"), 8, "seed-1");
      const b = await writeLargeBlob(join(dir, "b"), 8, "seed-1");
      const c = await writeLargeBlob(join(dir, "c"), 8, "seed-2");
      expect(a.size).toBe(8 * 1024 * 1024);
      expect(await fileDigest(a.path)).toBe(a.digest);
      expect(b.digest).toBe(a.digest);
      expect(c.digest).not.toBe(a.digest);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const modes: AuthMode[] = ["none", "basic", "token"];

describe.skipIf(!ready).each(modes)("docker-registry with auth %s", (mode) => {
  let reg: Distribution;
  let images: BuiltImage[];

  beforeAll(async () => {
    [reg, images] = await Promise.all([startDistribution({ auth: mode }), Promise.all(STANDARD_IMAGE_NAMES.map((n) => standardImage(n)))]);
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("answers /v2/ and challenges anonymous clients when auth is on", async () => {
    const res = await fetch(`${reg.url}/v2/`);
    expect(res.headers.get("docker-distribution-api-version")).toBe("registry/2.0");
    if (mode === "none") {
      expect(res.status).toBe(200);
    } else {
      expect(res.status).toBe(401);
      const challenge = res.headers.get("www-authenticate") ?? "";
      if (mode === "basic") expect(challenge).toMatch(/^Basic realm=/);
      else expect(challenge).toBe(`Bearer realm="${reg.tokenServer!.realm}",service="${reg.tokenServer!.service}"`);
      const wrong = await fetch(`${reg.url}/v2/`, { headers: { authorization: `Basic ${Buffer.from("testuser:wrong").toString("base64")}` } });
      expect(wrong.status).toBe(401);
    }
  });

  it(mode === "none" ? "skopeo pushes anonymously" : "skopeo without credentials is refused", async () => {
    const small = images[0]!;
    const anonymous = pushImage(small, { host: reg.host, credentials: null }, "fixtures/anonymous", "v1");
    if (mode === "none") await expect(anonymous).resolves.toBe(small.digest);
    else await expect(anonymous).rejects.toThrow(/unauthorized|authentication required|denied/i);
  });

  it("skopeo pushes every image and the registry serves it byte for byte", async () => {
    for (const image of images) {
      const digest = await pushImage(image, reg, repoOf(image), "v1");
      expect(digest).toBe(image.digest);
      await expectServed(reg, repoOf(image), "v1", image);
    }
  });

  it("tags/list, _catalog, skopeo list-tags and inspect agree with what was pushed", async () => {
    const small = images[0]!;
    await pushImage(small, reg, repoOf(small), "v2");
    const tags = await reg.fetch(`/v2/${repoOf(small)}/tags/list`, { scopes: [scope.pull(repoOf(small))] });
    expect(await tags.json()).toEqual({ name: repoOf(small), tags: ["v1", "v2"] });
    expect(await skopeoListTags(`docker://${reg.host}/${repoOf(small)}`, { creds: reg.credentials })).toEqual(["v1", "v2"]);

    const catalog = await reg.fetch("/v2/_catalog", { scopes: [scope.catalog] });
    const expected = [...images.map(repoOf), ...(mode === "none" ? ["fixtures/anonymous"] : [])].sort();
    expect(((await catalog.json()) as { repositories: string[] }).repositories).toEqual(expected);

    const raw = await skopeoInspectRaw(dockerRef(reg, repoOf(small), "v2"), { creds: reg.credentials });
    expect(raw.equals(small.bytes)).toBe(true);
    const info = await skopeoInspect(dockerRef(reg, repoOf(small), "v2"), { creds: reg.credentials });
    expect(info.Digest).toBe(small.digest);
    expect(info.Layers).toEqual(small.manifests[0]!.layers.map((l) => l.digest));
  });

  it("skopeo copies images back into local layouts with the same digests", async () => {
    const dir = mkdtempSync(join(tmpdir(), "artifact-pull-"));
    try {
      for (const image of images) {
        const pulled = await pullImage(
          reg,
          repoOf(image),
          "v1",
          { dir: join(dir, image.name), transport: image.transport },
          { all: image.manifests.length > 1 },
        );
        expect(pulled.digest).toBe(image.digest);
        expect(sha256(await skopeoInspectRaw(pulled.ref))).toBe(image.digest);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("skopeo delete removes the manifest and its tags", async () => {
    const image = await smallImage("to-delete");
    const repo = "fixtures/deleted";
    await pushImage(image, reg, repo, "gone");
    await skopeoDelete(dockerRef(reg, repo, "gone"), { creds: reg.credentials });
    const scopes = [scope.pull(repo)];
    expect((await reg.fetch(`/v2/${repo}/manifests/${image.digest}`, { method: "HEAD", headers: { accept: ACCEPT_ANY_MANIFEST }, scopes })).status).toBe(404);
    expect((await reg.fetch(`/v2/${repo}/manifests/gone`, { method: "HEAD", headers: { accept: ACCEPT_ANY_MANIFEST }, scopes })).status).toBe(404);
  });

  it("seedRepositories fills many repositories fast; _catalog pages through them with n and Link", async () => {
    const image = await smallImage("seeded");
    const repos = Array.from({ length: 30 }, (_, i) => `seeded/repo-${String(i).padStart(3, "0")}`);
    await seedRepositories(reg, image, { repos, tags: ["a", "b"] });
    const seen: string[] = [];
    let next: string | undefined = "/v2/_catalog?n=10";
    while (next) {
      const res: Response = await reg.fetch(next, { scopes: [scope.catalog] });
      expect(res.status).toBe(200);
      seen.push(...((await res.json()) as { repositories: string[] }).repositories);
      next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get("link") ?? "")?.[1];
    }
    expect(seen.filter((r) => r.startsWith("seeded/"))).toEqual(repos);
    const last = repos.at(-1)!;
    const tags = await reg.fetch(`/v2/${last}/tags/list`, { scopes: [scope.pull(last)] });
    // Distribution 2.8 lists tags in storage order, not sorted.
    expect(((await tags.json()) as { tags: string[] }).tags.sort()).toEqual(["a", "b"]);
    await expectServed(reg, last, "b", image);
  });

  if (mode === "token") {
    it("the token server checks credentials and grants the scopes asked for", async () => {
      const ts = reg.tokenServer!;
      const pushes = ts.requests.filter((r) => r.user === reg.credentials!.username && r.scopes.some((s) => s.endsWith(":pull,push")));
      expect(pushes.length).toBeGreaterThan(0);
      expect(pushes.every((r) => r.status === 200)).toBe(true);

      const bad = await fetch(`${ts.realm}?service=${ts.service}&scope=${scope.pull("fixtures/small")}`, {
        headers: { authorization: `Basic ${Buffer.from("testuser:wrong").toString("base64")}` },
      });
      expect(bad.status).toBe(401);

      // An anonymous token carries no access: the registry refuses it with insufficient_scope.
      const anon = await reg.authHeaders([scope.pull("fixtures/small")], { anonymous: true });
      const res = await fetch(`${reg.url}/v2/fixtures/small/manifests/v1`, { headers: { ...anon, accept: ACCEPT_ANY_MANIFEST } });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    });
  }
});

describe.skipIf(!ready)("docker-registry storage and lifecycle helpers", () => {
  let reg: Distribution;
  let image: BuiltImage;
  beforeAll(async () => {
    [reg, image] = await Promise.all([startDistribution(), smallImage("corrupt")]);
    await pushImage(image, reg, "fixtures/corrupt", "v1");
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("corruptBlob(flip) makes the registry serve same-size bytes with another digest", async () => {
    const layer = image.manifests[0]!.layers[0]!;
    await reg.corruptBlob(layer.digest, "flip");
    const res = await fetch(`${reg.url}/v2/fixtures/corrupt/blobs/${layer.digest}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("docker-content-digest")).toBe(layer.digest);
    const served = await streamedDigest(res);
    expect(served.size).toBe(layer.size);
    expect(served.digest).not.toBe(layer.digest);
  });

  it("corruptBlob(truncate) makes the registry send fewer bytes than the blob holds", async () => {
    const config = image.manifests[0]!.config;
    await reg.corruptBlob(config.digest, "truncate");
    const res = await fetch(`${reg.url}/v2/fixtures/corrupt/blobs/${config.digest}`);
    const body = await res.arrayBuffer().then(
      (bytes) => Buffer.from(bytes),
      () => undefined,
    );
    // Distribution stats the file: either a short, wrong body or a broken response; never the blob.
    expect(body === undefined || sha256(body) !== config.digest).toBe(true);
  });

  it("freeze() hangs requests, thaw() answers them, kill() + restart() keep the storage", async () => {
    await reg.freeze();
    await expect(fetch(`${reg.url}/v2/`, { signal: AbortSignal.timeout(300) })).rejects.toThrow();
    reg.thaw();
    expect((await fetch(`${reg.url}/v2/`)).status).toBe(200);

    await reg.kill();
    await expect(fetch(`${reg.url}/v2/`)).rejects.toThrow();
    await reg.restart();
    const res = await fetch(`${reg.url}/v2/fixtures/corrupt/manifests/v1`, { headers: { accept: ACCEPT_ANY_MANIFEST } });
    expect(res.headers.get("docker-content-digest")).toBe(image.digest);
  });
});

describe.skipIf(!ready)("token registry with anonymous pull", () => {
  let reg: Distribution;
  afterAll(async () => {
    await reg?.stop();
  });

  it("lets anonymous clients pull but not push, with short-lived tokens", async () => {
    reg = await startDistribution({ auth: "token", anonymousPull: true, tokenTtlSeconds: 30 });
    const image = await smallImage("public");
    await pushImage(image, reg, "public/app", "v1");
    expect(await skopeoInspectRaw(dockerRef(reg, "public/app", "v1"), { creds: null })).toEqual(image.bytes);
    await expect(pushImage(image, { host: reg.host, credentials: null }, "public/app", "v2")).rejects.toThrow(/unauthorized|authentication required|denied/i);
    const anonymous = reg.tokenServer!.requests.filter((r) => r.user === undefined);
    expect(anonymous.length).toBeGreaterThan(0);
    const res = await fetch(`${reg.tokenServer!.realm}?service=${reg.tokenServer!.service}&scope=${scope.pull("public/app")}`);
    expect(((await res.json()) as { expires_in: number }).expires_in).toBe(30);
  });
});
