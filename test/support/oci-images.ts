// Container images built on the spot, never pulled. Fixed timestamps and seeded content give the same
// digests on every run with the same Node (gzip output depends on the bundled zlib), so tests can
// compare bytes exactly. OCI images are written as OCI image layouts (oci-layout, index.json,
// blobs/sha256/…). Docker schema2 images are written in skopeo's `dir:` format (manifest.json, one
// file per blob named by its hex digest, a `version` file): skopeo's `oci:` reader only accepts OCI
// media types in index.json, so it cannot serve a docker manifest. Each image is built once per
// process into a temp dir that is removed when the process exits.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { removeWhenProcessEnds } from "./reaper.js";
import { seededBytes, tarStream, type TarEntry } from "./tar.js";

export const MediaType = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
} as const;

/** The `Accept` header a registry client sends to get any of the manifest kinds above. */
export const ACCEPT_ANY_MANIFEST = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList].join(", ");

const CREATED = "2020-01-01T00:00:00Z";
const REF_NAME = "org.opencontainers.image.ref.name";

export type ImageFormat = "oci" | "docker";

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface BlobFile {
  digest: string;
  size: number;
  mediaType: string;
  /** The blob's file inside the layout. */
  path: string;
}

export interface LayerFile extends BlobFile {
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: string;
}

export interface ImageManifest extends BlobFile {
  bytes: Buffer;
  platform: Platform;
  config: BlobFile;
  layers: LayerFile[];
}

export interface BuiltImage {
  name: string;
  format: ImageFormat;
  /** Where it is stored: an OCI layout ("oci", OCI images) or skopeo's `dir:` format ("dir", Docker images). */
  transport: "oci" | "dir";
  /** The layout (or `dir:`) directory. */
  layoutPath: string;
  /** The ref name of the image inside an OCI layout (index.json annotation); informational for `dir:`. */
  tag: string;
  /** Source reference for skopeo: `oci:<layoutPath>:<tag>` or `dir:<layoutPath>`. */
  ref: string;
  /** The top-level manifest: the index (or manifest list) for multi-platform images. */
  digest: string;
  mediaType: string;
  size: number;
  bytes: Buffer;
  /** The image manifests: one, or one per platform. */
  manifests: ImageManifest[];
  /** Every distinct config and layer blob (not manifests). */
  blobs: BlobFile[];
}

export interface LayerSpec {
  files: TarEntry[];
  /** Default gzip. "none" stores the plain tar (OCI `…layer.v1.tar`), fast for big layers. */
  compression?: "gzip" | "none";
}

export interface ImageSpec {
  name: string;
  tag?: string;
  format?: ImageFormat;
  /** One entry: a single image manifest. More (or `index: true`): an index / manifest list of them. */
  images: { platform: Platform; layers: LayerSpec[] }[];
  index?: boolean;
}

let root: string | undefined;
function fixturesRoot(): string {
  if (!root) {
    root = mkdtempSync(join(tmpdir(), "artifact-oci-"));
    removeWhenProcessEnds(root);
  }
  return root;
}

const sha256 = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** OCI layout: blobs/<alg>/<hex>. skopeo `dir:`: <hex> at the top (sha256 only). */
function blobPathOf(layout: string, digest: string): string {
  const [alg, hex] = digest.split(":");
  return existsSync(join(layout, "oci-layout")) ? join(layout, "blobs", alg!, hex!) : join(layout, hex!);
}

async function writeBlob(layout: string, bytes: Buffer, mediaType: string): Promise<BlobFile> {
  const digest = sha256(bytes);
  const path = blobPathOf(layout, digest);
  await writeFile(path, bytes);
  return { digest, size: bytes.length, mediaType, path };
}

/** Passes bytes through while hashing and counting them. */
function hashing(): Transform & { digest(): string; bytes: number } {
  const hash = createHash("sha256");
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      t.bytes += chunk.length;
      done(null, chunk);
    },
  }) as Transform & { digest(): string; bytes: number };
  t.bytes = 0;
  t.digest = () => `sha256:${hash.digest("hex")}`;
  return t;
}

/** Streams `source` into a temp file inside the layout and renames it to its digest. */
async function streamBlob(layout: string, source: Iterable<Buffer>, gzip: boolean): Promise<{ digest: string; size: number; path: string; diffId: string }> {
  const tmp = join(layout, `.tmp-${randomBytes(6).toString("hex")}`);
  const raw = hashing();
  const stored = hashing();
  const input = Readable.from(source, { objectMode: false });
  if (gzip) await pipeline(input, raw, createGzip({ level: 6 }), stored, createWriteStream(tmp));
  else await pipeline(input, raw, stored, createWriteStream(tmp));
  const digest = stored.digest();
  const path = blobPathOf(layout, digest);
  await rename(tmp, path);
  return { digest, size: stored.bytes, path, diffId: raw.digest() };
}

async function writeLayer(layout: string, spec: LayerSpec, format: ImageFormat): Promise<LayerFile> {
  const gzip = (spec.compression ?? "gzip") === "gzip";
  const mediaType = format === "docker" ? (gzip ? MediaType.dockerLayerGzip : MediaType.dockerLayer) : gzip ? MediaType.ociLayerGzip : MediaType.ociLayer;
  const written = await streamBlob(layout, tarStream(spec.files), gzip);
  return { ...written, mediaType };
}

const descriptor = (b: { mediaType: string; digest: string; size: number }) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size });

async function writeImage(layout: string, name: string, format: ImageFormat, platform: Platform, layerSpecs: LayerSpec[]): Promise<ImageManifest> {
  const layers: LayerFile[] = [];
  for (const spec of layerSpecs) layers.push(await writeLayer(layout, spec, format));
  const config = {
    created: CREATED,
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    config: {
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      Cmd: ["/bin/sh"],
      Labels: { "org.opencontainers.image.title": name },
    },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created: CREATED, created_by: `artifact-service test fixture ${name} layer ${i}` })),
  };
  const configBlob = await writeBlob(layout, Buffer.from(JSON.stringify(config)), format === "docker" ? MediaType.dockerConfig : MediaType.ociConfig);
  const mediaType = format === "docker" ? MediaType.dockerManifest : MediaType.ociManifest;
  const manifest = { schemaVersion: 2, mediaType, config: descriptor(configBlob), layers: layers.map(descriptor) };
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2));
  const blob = await writeBlob(layout, bytes, mediaType);
  return { ...blob, bytes, platform, config: configBlob, layers };
}

/**
 * Builds an image from a spec (for fixtures beyond the four standard ones) into `dir`, which must
 * not exist yet; by default a fresh directory under this process's fixtures root.
 */
export async function buildImage(spec: ImageSpec, dir?: string): Promise<BuiltImage> {
  const format = spec.format ?? "oci";
  const tag = spec.tag ?? "latest";
  const transport = format === "docker" ? "dir" : "oci";
  if (dir === undefined) dir = join(mkdtempSync(join(fixturesRoot(), `${spec.name}-`)), "image");
  else if (existsSync(dir)) throw new Error(`buildImage: ${dir} already exists`);
  if (transport === "oci") {
    mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
    // Written first: blobPathOf() tells the two formats apart by this file.
    await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  } else {
    mkdirSync(dir, { recursive: true });
    await writeFile(join(dir, "version"), "Directory Transport Version: 1.1\n");
  }
  const manifests: ImageManifest[] = [];
  for (const image of spec.images) manifests.push(await writeImage(dir, spec.name, format, image.platform, image.layers));

  let top: BlobFile & { bytes: Buffer };
  if (spec.index ?? spec.images.length > 1) {
    const mediaType = format === "docker" ? MediaType.dockerManifestList : MediaType.ociIndex;
    const index = {
      schemaVersion: 2,
      mediaType,
      manifests: manifests.map((m) => ({ ...descriptor(m), platform: m.platform })),
    };
    const bytes = Buffer.from(JSON.stringify(index, null, 2));
    top = { ...(await writeBlob(dir, bytes, mediaType)), bytes };
  } else {
    top = manifests[0]!;
  }

  if (transport === "oci") {
    const layoutIndex = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [{ ...descriptor(top), annotations: { [REF_NAME]: tag } }],
    };
    await writeFile(join(dir, "index.json"), JSON.stringify(layoutIndex));
  } else {
    // dir: keeps the top manifest in manifest.json and each list instance in <hex>.manifest.json.
    await writeFile(join(dir, "manifest.json"), top.bytes);
    if (top !== manifests[0] || manifests.length > 1) {
      for (const m of manifests) await writeFile(join(dir, `${m.digest.split(":")[1]}.manifest.json`), m.bytes);
    }
  }

  const blobs = new Map<string, BlobFile>();
  for (const m of manifests) for (const b of [m.config, ...m.layers]) blobs.set(b.digest, b);
  return {
    name: spec.name,
    format,
    transport,
    layoutPath: dir,
    tag,
    ref: transport === "oci" ? `oci:${dir}:${tag}` : `dir:${dir}`,
    digest: top.digest,
    mediaType: top.mediaType,
    size: top.size,
    bytes: top.bytes,
    manifests,
    blobs: [...blobs.values()],
  };
}

const cache = new Map<string, Promise<BuiltImage>>();
function cached(key: string, build: () => Promise<BuiltImage>): Promise<BuiltImage> {
  let p = cache.get(key);
  if (!p) {
    p = build();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

const AMD64: Platform = { os: "linux", architecture: "amd64" };
const ARM64: Platform = { os: "linux", architecture: "arm64", variant: "v8" };

/** A small root filesystem: directories, text files, an executable, a symlink. */
function smallRootfs(seed: string): TarEntry[] {
  return [
    { path: "bin", type: "dir" },
    { path: "bin/tool", type: "file", mode: 0o755, content: { seed: `${seed}/tool`, size: 4096 + 123 } },
    { path: "etc", type: "dir" },
    { path: "etc/fixture-release", type: "file", content: `fixture=${seed}\n` },
    { path: "usr", type: "dir" },
    { path: "usr/bin", type: "dir" },
    { path: "usr/bin/tool", type: "symlink", linkname: "/bin/tool" },
  ];
}

export const BIG_LAYER_BYTES = 64 * 1024 * 1024;

export type StandardImageName = "small" | "multi-layer" | "multi-platform" | "docker-schema2";
export const STANDARD_IMAGE_NAMES: StandardImageName[] = ["small", "multi-layer", "multi-platform", "docker-schema2"];

/** The specs of the four standard fixtures; `seed` (default: the name) changes every digest. */
export function standardImageSpec(name: StandardImageName, seed: string = name): ImageSpec {
  const specName = seed === name ? name : `${name}-${seed}`;
  switch (name) {
    // (a) One gzip layer of a few KiB.
    case "small":
      return { name: specName, images: [{ platform: AMD64, layers: [{ files: smallRootfs(seed) }] }] };
    // (b) Three layers: small gzip, a 64 MiB uncompressed tar of seeded bytes, small gzip.
    case "multi-layer":
      return {
        name: specName,
        images: [
          {
            platform: AMD64,
            layers: [
              { files: smallRootfs(seed) },
              {
                compression: "none",
                files: [
                  { path: "data", type: "dir" },
                  { path: "data/random.bin", type: "file", content: { seed: `${seed}/big`, size: BIG_LAYER_BYTES } },
                ],
              },
              {
                files: [
                  { path: "etc", type: "dir" },
                  { path: "etc/app.conf", type: "file", content: `mode=${seed}\n` },
                ],
              },
            ],
          },
        ],
      };
    // (c) An OCI index of two image manifests: linux/amd64 and linux/arm64/v8.
    case "multi-platform":
      return {
        name: specName,
        images: [AMD64, ARM64].map((platform) => ({ platform, layers: [{ files: smallRootfs(`${seed}/${platform.architecture}`) }] })),
      };
    // (d) A Docker v2 schema2 image (docker media types for manifest, config, layers), two layers, `dir:` format.
    case "docker-schema2":
      return {
        name: specName,
        format: "docker",
        images: [
          {
            platform: AMD64,
            layers: [
              { files: smallRootfs(seed) },
              {
                files: [
                  { path: "srv", type: "dir" },
                  { path: "srv/index.html", type: "file", content: `<h1>${seed}</h1>\n` },
                ],
              },
            ],
          },
        ],
      };
  }
}

/** A standard fixture, built once per process (per seed). */
export function standardImage(name: StandardImageName, seed: string = name): Promise<BuiltImage> {
  return cached(`${name}:${seed}`, () => buildImage(standardImageSpec(name, seed)));
}

/** (a) One gzip layer of a few KiB. Another `seed` gives a distinct image (e.g. many repositories). */
export const smallImage = (seed?: string) => standardImage("small", seed);
/** (b) small gzip layer + 64 MiB uncompressed tar layer + small gzip layer. */
export const multiLayerImage = (seed?: string) => standardImage("multi-layer", seed);
/** (c) OCI index: linux/amd64 + linux/arm64/v8 image manifests. */
export const multiPlatformIndex = (seed?: string) => standardImage("multi-platform", seed);
/** (d) Docker v2 schema2 manifest with docker media types, stored in skopeo `dir:` format. */
export const dockerSchema2Image = (seed?: string) => standardImage("docker-schema2", seed);

/** The four standard fixtures, built (once per process) in parallel. */
export async function standardImages(): Promise<BuiltImage[]> {
  return Promise.all(STANDARD_IMAGE_NAMES.map((n) => standardImage(n)));
}

/** An image with one uncompressed layer of `sizeMiB` MiB of seeded bytes (push benchmarks). */
export function largeImage(sizeMiB: number, seed = `large-${sizeMiB}`): Promise<BuiltImage> {
  return cached(`large:${sizeMiB}:${seed}`, () =>
    buildImage({
      name: `large-${sizeMiB}m-${createHash("sha256").update(seed).digest("hex").slice(0, 8)}`,
      images: [
        {
          platform: AMD64,
          layers: [{ compression: "none", files: [{ path: "blob.bin", type: "file", content: { seed, size: sizeMiB * 1024 * 1024 } }] }],
        },
      ],
    }),
  );
}

/** Writes `sizeMiB` MiB of seeded bytes to `path` in 1 MiB chunks; returns its digest. */
export async function writeLargeBlob(path: string, sizeMiB: number, seed = `blob-${sizeMiB}`): Promise<{ path: string; digest: string; size: number }> {
  const h = hashing();
  await pipeline(Readable.from(seededBytes(seed, sizeMiB * 1024 * 1024)), h, createWriteStream(path));
  return { path, digest: h.digest(), size: h.bytes };
}

/** The file holding `digest` in the image's layout (configs, layers and manifests). */
export function layoutBlobPath(image: BuiltImage, digest: string): string {
  return blobPathOf(image.layoutPath, digest);
}

/** sha256 of a file, streamed. */
export async function fileDigest(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

/** Removes every layout this process built (they are also removed at exit). */
export async function removeBuiltImages(): Promise<void> {
  cache.clear();
  if (root) await rm(root, { recursive: true, force: true });
  root = undefined;
}

export { sha256 as digestOf };
// Re-exported for specs of custom images.
export type { TarEntry } from "./tar.js";
