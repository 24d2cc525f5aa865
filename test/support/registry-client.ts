// A plain-fetch client for the /v2/ registry API of the service under test: raw requests that
// keep status, headers and body bytes for assertions, plus the few steps most tests repeat
// (upload a blob, push a manifest, build a small image in memory). No registry library: the
// point of the spec tests is to see exactly what goes over the wire.
import { createHash, randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { expect } from "vitest";
import { ADMIN_BASIC } from "./credentials.js";

export interface Answer {
  status: number;
  headers: Headers;
  body: Buffer;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: OciJson | undefined;
}

/** A descriptor as the referrers index lists it. */
export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** The body of an OCI error answer. */
export interface OciErrors {
  errors: { code: string; message: string; detail?: unknown }[];
}

/** The JSON bodies of /v2/ answers (errors, tag and catalog lists, the referrers index): every field optional, as which one a body has is what a test asserts. */
export interface OciJson extends Partial<OciErrors> {
  name?: string;
  tags?: string[];
  repositories?: string[];
  schemaVersion?: number;
  mediaType?: string;
  manifests?: OciDescriptor[];
}

export const sha256 = (bytes: Uint8Array | string) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

export const MT = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  empty: "application/vnd.oci.empty.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

/**
 * `authorization`: sent with every request that sets none of its own; by default the test
 * server's admin as Basic credentials straight on /v2/, `undefined` for an anonymous client.
 */
export class RegistryClient {
  constructor(
    readonly baseUrl: string,
    readonly authorization: string | undefined = ADMIN_BASIC,
  ) {}

  private withAuthorization(headers: Record<string, string> = {}): Record<string, string> {
    if (this.authorization === undefined || Object.keys(headers).some((h) => h.toLowerCase() === "authorization")) return headers;
    return { ...headers, authorization: this.authorization };
  }

  async req(method: string, path: string, init: { headers?: Record<string, string>; body?: Uint8Array | string } = {}): Promise<Answer> {
    const res = await fetch(`${this.baseUrl}${path}`, { method, headers: this.withAuthorization(init.headers), body: init.body, redirect: "manual" });
    const body = Buffer.from(await res.arrayBuffer());
    let json: OciJson | undefined;
    try {
      json = body.length > 0 ? (JSON.parse(body.toString("utf8")) as OciJson) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, body, json };
  }

  /**
   * A request sent byte for byte as written (fetch normalises paths: `..` and `%2e%2e` would never
   * reach the server as sent).
   */
  raw(
    method: string,
    rawPath: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    const url = new URL(this.baseUrl);
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, method, path: rawPath, headers: this.withAuthorization(headers) }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
  }

  /** POST + PUT (the two-step monolithic upload); returns the digest. */
  async uploadBlob(name: string, bytes: Uint8Array | string): Promise<string> {
    const digest = sha256(bytes);
    const start = await this.req("POST", `/v2/${name}/blobs/uploads/`);
    expect(start.status, start.body.toString()).toBe(202);
    const put = await this.req("PUT", withDigest(start.headers.get("location")!, digest), {
      headers: { "content-type": "application/octet-stream" },
      body: bytes,
    });
    expect(put.status, put.body.toString()).toBe(201);
    return digest;
  }

  async putManifest(name: string, reference: string, manifest: Uint8Array | string | object, mediaType?: string): Promise<Answer> {
    const bytes = typeof manifest === "string" || manifest instanceof Uint8Array ? manifest : JSON.stringify(manifest);
    const type =
      mediaType ??
      (typeof manifest === "object" && !(manifest instanceof Uint8Array) ? (manifest as { mediaType?: string }).mediaType : undefined) ??
      MT.ociManifest;
    return this.req("PUT", `/v2/${name}/manifests/${reference}`, { headers: { "content-type": type }, body: bytes });
  }

  /** Uploads a fresh config and layer and pushes an image manifest for them under `reference`. */
  async pushImage(name: string, reference: string, options: ImageOptions = {}): Promise<PushedImage> {
    const image = makeImage(options);
    for (const blob of image.blobs) await this.uploadBlob(name, blob);
    const res = await this.putManifest(name, reference, image.bytes, image.mediaType);
    expect(res.status, res.body.toString()).toBe(201);
    return image;
  }
}

export interface ImageOptions {
  /** Layer size in bytes (default 1 KiB of random bytes). */
  layerBytes?: number;
  subject?: { mediaType: string; digest: string; size: number };
  artifactType?: string;
  configMediaType?: string;
  annotations?: Record<string, string>;
  docker?: boolean;
}

export interface PushedImage {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  config: Buffer;
  layer: Buffer;
  blobs: Buffer[];
  descriptor: { mediaType: string; digest: string; size: number };
}

/** An image manifest with one random layer and a config, all in memory. */
export function makeImage(options: ImageOptions = {}): PushedImage {
  const layer = randomBytes(options.layerBytes ?? 1024);
  const config = Buffer.from(
    JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [sha256(layer)] }, nonce: randomBytes(8).toString("hex") }),
  );
  const mediaType = options.docker ? MT.dockerManifest : MT.ociManifest;
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType,
    ...(options.artifactType ? { artifactType: options.artifactType } : {}),
    config: { mediaType: options.configMediaType ?? (options.docker ? MT.dockerConfig : MT.ociConfig), digest: sha256(config), size: config.length },
    layers: [{ mediaType: options.docker ? MT.dockerLayer : MT.ociLayer, digest: sha256(layer), size: layer.length }],
    ...(options.subject ? { subject: options.subject } : {}),
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2));
  const digest = sha256(bytes);
  return { bytes, digest, mediaType, config, layer, blobs: [config, layer], descriptor: { mediaType, digest, size: bytes.length } };
}

/** An index of the given manifests. */
export function makeIndex(
  children: { mediaType: string; digest: string; size: number }[],
  options: { docker?: boolean; subject?: object; artifactType?: string } = {},
): { bytes: Buffer; digest: string; mediaType: string } {
  const mediaType = options.docker ? MT.dockerList : MT.ociIndex;
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      ...(options.artifactType ? { artifactType: options.artifactType } : {}),
      manifests: children.map((c, i) => ({ ...c, platform: { os: "linux", architecture: i === 0 ? "amd64" : "arm64" } })),
      ...(options.subject ? { subject: options.subject } : {}),
    }),
  );
  return { bytes, digest: sha256(bytes), mediaType };
}

/** `location` (relative or absolute) with `digest=` added to its query. */
export function withDigest(location: string, digest: string): string {
  const url = new URL(location, "http://registry.invalid");
  url.searchParams.set("digest", digest);
  return `${url.pathname}${url.search}`;
}

/** The path (and query) of a Location header, relative or absolute. */
export function pathOf(location: string | null): string {
  expect(location, "Location header").toBeTruthy();
  const url = new URL(location!, "http://registry.invalid");
  return `${url.pathname}${url.search}`;
}

/** Asserts an OCI error answer: status, code, and a JSON body in the spec's shape. */
export function expectOciError(res: Answer, status: number, code: string, mentions?: string | RegExp): void {
  expect({ status: res.status, code: res.json?.errors?.[0]?.code }, res.body.toString().slice(0, 500)).toEqual({ status, code });
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(Array.isArray(res.json?.errors)).toBe(true);
  expect(typeof res.json?.errors?.[0]?.message).toBe("string");
  if (mentions !== undefined) expect(res.json?.errors?.[0]?.message).toMatch(mentions);
}
