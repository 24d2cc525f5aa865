// The floor of a push: skopeo copying the same image from its OCI layout into a new OCI layout
// (skopeo reads, verifies and writes the layer; no network, no registry). Used by bench/push.ts,
// bench/scale-out.ts and the registry suite; the copy is checked (digest, index.json, layer sizes)
// and removed. layoutProblem() checks a pull into an OCI layout the same way.
import { readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { BuiltImage } from "../test/support/oci-images.js";
import { skopeoCopy } from "../test/support/skopeo.js";

/** Seconds of one checked copy into `dir` (which must not exist yet; removed afterwards). */
export async function timeLayoutCopy(image: BuiltImage, dir: string): Promise<number> {
  try {
    const t0 = performance.now();
    const { digest } = await skopeoCopy(image.ref, `oci:${dir}:latest`, { timeoutMs: 600_000 });
    const seconds = (performance.now() - t0) / 1000;
    const problem = digest !== image.digest ? `skopeo copied ${digest}, expected ${image.digest}` : layoutProblem(dir, image);
    if (problem) throw new Error(`the floor copy: ${problem}`);
    return seconds;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What is wrong with the OCI layout in `dir` as a copy of `image` (index.json's digest, blob sizes), or undefined. */
export function layoutProblem(dir: string, image: BuiltImage): string | undefined {
  const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")) as { manifests: { digest: string }[] };
  if (index.manifests[0]?.digest !== image.digest) return `index.json names ${index.manifests[0]?.digest}, expected ${image.digest}`;
  for (const blob of image.blobs) {
    const [alg, hex] = blob.digest.split(":");
    const size = statSync(join(dir, "blobs", alg!, hex!)).size;
    if (size !== blob.size) return `${blob.digest} holds ${size} bytes, expected ${blob.size}`;
  }
  return undefined;
}
