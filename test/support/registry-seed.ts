// Fills a registry with many repositories and tags quickly, over the plain Distribution API
// (skopeo costs ~100 ms a call: too slow for 1,000 repositories x 10 tags). Blobs are uploaded
// once (monolithic POST + PUT) and cross-repository mounted into the other repositories; then
// each tag is one manifest PUT. Seeding only: tests still push what they test with skopeo.
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { Readable } from "node:stream";
import type { BuiltImage } from "./oci-images.js";

/** A registry to seed: a Distribution from distribution.ts fits, so does the service under test. */
export interface SeedTarget {
  url: string;
  authHeaders(scopes?: string[]): Promise<Record<string, string>>;
}

export interface SeedOptions {
  repos: string[];
  /** Tags to put on the image in every repository (default ["latest"]). */
  tags?: string[];
  /** Requests in flight (default 8). */
  concurrency?: number;
}

async function check(res: Response, what: string, ok: number[]): Promise<Response> {
  if (!ok.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
  return res;
}

async function uploadBlob(
  target: SeedTarget,
  repo: string,
  path: string,
  digest: string,
  size: number,
  from: string | undefined,
  auth: Record<string, string>,
): Promise<void> {
  if (!from) {
    const head = await fetch(`${target.url}/v2/${repo}/blobs/${digest}`, { method: "HEAD", headers: auth });
    if (head.status === 200) return;
  }
  const start = from ? `${target.url}/v2/${repo}/blobs/uploads/?mount=${digest}&from=${from}` : `${target.url}/v2/${repo}/blobs/uploads/`;
  const post = await check(await fetch(start, { method: "POST", headers: auth }), `POST ${start}`, [201, 202]);
  await post.arrayBuffer();
  if (post.status === 201) return; // mounted
  const location = new URL(post.headers.get("location")!, target.url);
  location.searchParams.set("digest", digest);
  // Small blobs as one buffer; big ones streamed so memory stays flat.
  const body = size <= 8 << 20 ? await readFile(path) : (Readable.toWeb(createReadStream(path)) as ReadableStream);
  const put = await fetch(location, {
    method: "PUT",
    headers: { ...auth, "content-type": "application/octet-stream", "content-length": String(size) },
    body,
    duplex: "half",
  });
  await check(put, `PUT blob ${digest} to ${repo}`, [201]);
  await put.arrayBuffer();
}

async function putManifest(target: SeedTarget, repo: string, reference: string, bytes: Buffer, mediaType: string, auth: Record<string, string>): Promise<void> {
  const res = await fetch(`${target.url}/v2/${repo}/manifests/${reference}`, {
    method: "PUT",
    headers: { ...auth, "content-type": mediaType },
    body: bytes,
  });
  await check(res, `PUT manifest ${repo}:${reference}`, [201]);
  await res.arrayBuffer();
}

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  });
  await Promise.all(workers);
}

/** Pushes `image` into every repository of `opts.repos` under every tag of `opts.tags`. */
export async function seedRepositories(target: SeedTarget, image: BuiltImage, opts: SeedOptions): Promise<void> {
  const tags = opts.tags ?? ["latest"];
  const concurrency = opts.concurrency ?? 8;
  const [first, ...rest] = opts.repos;
  if (!first) return;
  const blobs = image.blobs;
  const seedOne = async (repo: string, from: string | undefined) => {
    const scopes = [`repository:${repo}:pull,push`, ...(from ? [`repository:${from}:pull`] : [])];
    const auth = await target.authHeaders(scopes);
    for (const b of blobs) await uploadBlob(target, repo, b.path, b.digest, b.size, from, auth);
    // An index's children go first: a registry may refuse an index whose manifests it lacks.
    if (image.digest !== image.manifests[0]?.digest || image.manifests.length > 1) {
      for (const m of image.manifests) await putManifest(target, repo, m.digest, m.bytes, m.mediaType, auth);
    }
    for (const tag of tags) await putManifest(target, repo, tag, image.bytes, image.mediaType, auth);
  };
  await seedOne(first, undefined);
  await pool(rest, concurrency, (repo) => seedOne(repo, first));
}
