// The peer registry: Debian's docker-registry (CNCF Distribution 2.8), started by
// test/support/distribution.ts with a fair configuration: filesystem storage in the temp dir (the
// same disk as the service's DATA_DIR) or a bucket of the service's object store, the in-memory
// blob descriptor cache that Debian's default config has, log level warn, no access log. Its pid
// is found for CPU and memory figures.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { startDistribution, type Distribution, type DistributionOptions } from "../test/support/distribution.js";
import { missingPeers, type Peer } from "../test/support/peers.js";

export interface PeerRegistry extends Distribution {
  /** The docker-registry process (not its watchdog shell). */
  pid: number;
}

/**
 * `tls`: serve HTTPS with that certificate (bench/tls.ts); `proxy`: a pull-through cache of that
 * registry (bench/suites/pull.ts); `s3`: content in that bucket instead of the filesystem, with
 * redirects off, so blobs stream through it (bench/scale-out.ts).
 */
export async function startPeerRegistry(options: Pick<DistributionOptions, "tls" | "proxy" | "s3"> = {}): Promise<PeerRegistry> {
  const registry = await startDistribution({ auth: "none", blobDescriptorCache: true, logLevel: "warn", ...options });
  const config = join(dirname(registry.storageDir), "config.yml");
  const pid = findProcess((argv) => argv[0]?.endsWith("docker-registry") === true && argv[1] === "serve" && argv[2] === config);
  if (pid === undefined) {
    await registry.stop();
    throw new Error(`docker-registry started on ${registry.url} but its process was not found`);
  }
  return Object.assign(registry, { pid });
}

function findProcess(matches: (argv: string[]) => boolean): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (matches(argv)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** Throws naming the Debian packages to install when a peer the suite needs is missing. */
export function requirePeers(suite: string, ...peers: (Peer | "curl")[]): void {
  const missing = missingPeers(...peers.filter((p): p is Peer => p !== "curl"));
  if (peers.includes("curl") && !hasCurl()) missing.push("curl");
  if (missing.length > 0) throw new Error(`${suite}: missing Debian package(s) ${missing.join(", ")}; apt-get install ${missing.join(" ")}`);
}

function hasCurl(): boolean {
  try {
    execFileSync("curl", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
