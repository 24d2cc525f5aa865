// The big image of the blob and push benchmarks (one uncompressed layer of N MiB of seeded bytes),
// built once into the cache dir and reused by later runs: same spec, same digests.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildImage, layoutBlobPath, type BuiltImage } from "../test/support/oci-images.js";
import { say } from "./lifecycle.js";

const MARKER = "built.json";

export async function cachedLargeImage(cacheDir: string, sizeMiB: number): Promise<BuiltImage> {
  const dir = join(cacheDir, `large-${sizeMiB}m`);
  const cached = load(dir);
  if (cached) return cached;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(cacheDir, { recursive: true });
  const t0 = performance.now();
  const image = await buildImage(
    {
      name: `bench-large-${sizeMiB}m`,
      images: [
        {
          platform: { os: "linux", architecture: "amd64" },
          layers: [
            { compression: "none", files: [{ path: "blob.bin", type: "file", content: { seed: `bench-large-${sizeMiB}`, size: sizeMiB * 1024 * 1024 } }] },
          ],
        },
      ],
    },
    join(dir, "layout"),
  );
  // Written last: its presence says the layout is complete. Manifest bytes are read back from the layout.
  writeFileSync(join(dir, MARKER), JSON.stringify({ ...image, bytes: undefined, manifests: image.manifests.map((m) => ({ ...m, bytes: undefined })) }));
  say(`built the ${sizeMiB} MiB image in ${((performance.now() - t0) / 1000).toFixed(1)} s into ${dir}`);
  return image;
}

function load(dir: string): BuiltImage | undefined {
  const marker = join(dir, MARKER);
  if (!existsSync(marker)) return undefined;
  try {
    const image = JSON.parse(readFileSync(marker, "utf8")) as BuiltImage;
    for (const b of image.blobs) if (statSync(b.path).size !== b.size) return undefined;
    for (const m of image.manifests) m.bytes = readFileSync(layoutBlobPath(image, m.digest));
    image.bytes = readFileSync(layoutBlobPath(image, image.digest));
    return image;
  } catch {
    return undefined;
  }
}
