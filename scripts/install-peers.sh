#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks use as independent peers:
#   skopeo          - OCI client that pushes/pulls test images
#   docker-registry - CNCF Distribution 2.8, the real upstream registry
#   apache2-utils   - htpasswd -B, bcrypt password files for Distribution's Basic auth
#   postgresql      - throwaway PostgreSQL clusters (test/support/postgres.ts)
#   chromium        - headless browser for test/browser.test.ts (driven by playwright-core)
#   podman          - a second container client (login/push/pull through the token flow)
#   openssl         - the test PKI of the TLS tests (test/support/tls.ts)
#   protobuf-compiler, protobuf-compiler-grpc, python3-grpcio
#                   - protoc, its gRPC Python plugin and grpcio: a Python client generated from
#                     `npm run protos:export` (test/protos-export.test.ts). Not python3-grpc-tools:
#                     bookworm's bundles a protoc older than proto3 `optional`.
#   curl, jq        - what the README's walkthrough uses (test/readme.test.ts runs it)
#   swift, swift-proxy, swift-object, swift-account, swift-container, memcached
#                   - a throwaway OpenStack Swift whose s3api middleware is the S3-compatible
#                     object store of the S3 content driver's tests (test/support/swift.ts)
#   nginx           - the round-robin load balancer in front of replicas (test/support/balancer.ts);
#                     (bookworm's nginx-light is this nginx plus the echo module)
# Idempotent: does nothing (and touches no network) when all are present.
set -euo pipefail

packages=(skopeo docker-registry apache2-utils postgresql chromium podman openssl protobuf-compiler protobuf-compiler-grpc python3-grpcio curl jq
  swift swift-proxy swift-object swift-account swift-container memcached nginx)

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = "installed" ]
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-peers: missing Debian packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi

echo "install-peers: installing ${missing[*]}" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-peers: apt-get update failed" >&2
  exit 1
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-peers: apt-get install ${missing[*]} failed" >&2
  exit 1
fi

for p in "${missing[@]}"; do
  if ! installed "$p"; then
    echo "install-peers: $p is still not installed" >&2
    exit 1
  fi
done
echo "install-peers: installed ${missing[*]}" >&2
