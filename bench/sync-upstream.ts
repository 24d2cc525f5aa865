// The upstream of the sync benchmark: many repositories × tags in a docker-registry. Seeded over
// HTTP once (test/support/registry-seed.ts), then its storage tree is kept in the cache dir and
// copied into the next run's registry, which serves it as if pushed (Distribution keeps
// everything in files, and the blob descriptor cache starts empty either way).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BuiltImage } from "../test/support/oci-images.js";
import { seedRepositories } from "../test/support/registry-seed.js";
import type { PeerRegistry } from "./peer.js";

export async function fillSyncUpstream(
  upstream: PeerRegistry,
  image: BuiltImage,
  repos: string[],
  tags: string[],
  cacheDir: string,
): Promise<{ seconds: number; how: string }> {
  const t0 = performance.now();
  const dir = join(cacheDir, `sync-upstream-${repos.length}x${tags.length}-${image.digest.slice(7, 19)}`);
  const done = join(dir, "complete");
  mkdirSync(upstream.storageDir, { recursive: true });
  if (existsSync(done)) {
    execFileSync("cp", ["-a", join(dir, "docker"), upstream.storageDir]);
    return { seconds: (performance.now() - t0) / 1000, how: "storage restored from the cache dir" };
  }
  await seedRepositories(upstream, image, { repos, tags, concurrency: 8 });
  const seconds = (performance.now() - t0) / 1000;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync("cp", ["-a", join(upstream.storageDir, "docker"), dir]);
  writeFileSync(done, "");
  return { seconds, how: "seeded over HTTP (one upload, cross-repository mounts, manifest PUTs), then kept in the cache dir" };
}
