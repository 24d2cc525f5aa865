// Which independent peers (Debian packages) this machine has. Suites that need one skip loudly
// without it; CI installs them all with scripts/install-peers.sh.
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";

const PEERS = {
  skopeo: { bin: "/usr/bin/skopeo", pkg: "skopeo" },
  "docker-registry": { bin: "/usr/bin/docker-registry", pkg: "docker-registry" },
  htpasswd: { bin: "/usr/bin/htpasswd", pkg: "apache2-utils" },
  openssl: { bin: "/usr/bin/openssl", pkg: "openssl" },
  curl: { bin: "/usr/bin/curl", pkg: "curl" },
  jq: { bin: "/usr/bin/jq", pkg: "jq" },
  protoc: { bin: "/usr/bin/protoc", pkg: "protobuf-compiler" },
  "grpc-python-plugin": { bin: "/usr/bin/grpc_python_plugin", pkg: "protobuf-compiler-grpc" },
  // Debian's own python3 (not whatever python3 is first on PATH), which the package installs into.
  "python3-grpcio": { bin: "/usr/bin/python3", pkg: "python3-grpcio", pythonModule: "grpc" },
  // A throwaway OpenStack Swift with its S3 API (test/support/swift.ts); the servers import
  // python3-swift, which the swift packages depend on.
  "swift-ring-builder": { bin: "/usr/bin/swift-ring-builder", pkg: "swift" },
  "swift-proxy-server": { bin: "/usr/bin/swift-proxy-server", pkg: "swift-proxy" },
  "swift-object-server": { bin: "/usr/bin/swift-object-server", pkg: "swift-object" },
  "swift-account-server": { bin: "/usr/bin/swift-account-server", pkg: "swift-account" },
  "swift-container-server": { bin: "/usr/bin/swift-container-server", pkg: "swift-container" },
  memcached: { bin: "/usr/bin/memcached", pkg: "memcached" },
  // The load balancer in front of replicas (test/support/balancer.ts).
  nginx: { bin: "/usr/sbin/nginx", pkg: "nginx" },
} as const satisfies Record<string, { bin: string; pkg: string; pythonModule?: string }>;

export type Peer = keyof typeof PEERS;

export function peerBin(peer: Peer): string {
  return PEERS[peer].bin;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function present(peer: Peer): boolean {
  const entry: { bin: string; pythonModule?: string } = PEERS[peer];
  if (!executable(entry.bin)) return false;
  return entry.pythonModule === undefined || spawnSync(entry.bin, ["-c", `import ${entry.pythonModule}`], { stdio: "ignore" }).status === 0;
}

/** The Debian packages missing for `peers` (empty when all are there). */
export function missingPeers(...peers: Peer[]): string[] {
  return peers.filter((p) => !present(p)).map((p) => PEERS[p].pkg);
}

/** True when all `peers` exist; otherwise warns once, naming the packages, and returns false. */
export function havePeers(suite: string, ...peers: Peer[]): boolean {
  const missing = missingPeers(...peers);
  if (missing.length === 0) return true;
  console.warn(
    `\n!!! ${suite}: SKIPPED, Debian package(s) not installed: ${missing.join(", ")}.` +
      `\n!!! Install with: bash scripts/install-peers.sh (or apt-get install ${missing.join(" ")})\n`,
  );
  return false;
}
