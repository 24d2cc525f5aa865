// The typed client at work: a HOSTED registry → namespace → repository, a tiny image pushed
// over the registry API (/v2/), a tag on its manifest, then everything listed back.
//
//   ARTIFACT_TOKEN=$(cat data/admin-token) \
//   npx tsx --conditions=artifact-source examples/catalog.ts [baseUrl] [connect|grpc|grpc-web]
//
// (the condition runs the client from source; a built package needs none). The service must be
// running, e.g. `npm start`; baseUrl defaults to http://localhost:8080. ARTIFACT_TOKEN is an API
// token of an account that may create registries (the first start writes the admin's to
// DATA_DIR/admin-token); the same token is the Basic password of the /v2/ pushes.
import { createHash } from "node:crypto";
import { RegistryKind } from "artifact-service/gen/artifact/v1/registry_pb.js";
import { createArtifactClient, type Protocol } from "artifact-service/client";

const baseUrl = process.argv[2] ?? "http://localhost:8080";
const protocol = (process.argv[3] ?? "connect") as Protocol;
const token = process.env.ARTIFACT_TOKEN;
if (!token) throw new Error("set ARTIFACT_TOKEN to an API token (the first start writes the admin's to DATA_DIR/admin-token)");
const client = createArtifactClient(baseUrl, { protocol, token, defaultTimeoutMs: 10_000 });
// The registry API takes the API token as the Basic password (any user name).
const registryAuth = { authorization: `Basic ${Buffer.from(`token:${token}`).toString("base64")}` };

const suffix = Math.random().toString(36).slice(2, 8);
const registry = await client.registries.createRegistry({
  registry: { name: `example-${suffix}`, kind: RegistryKind.HOSTED, description: "made by examples/catalog.ts" },
});
const namespace = await client.namespaces.createNamespace({ namespace: { registryId: registry.id, name: "team" } });
const repository = await client.repositories.createRepository({ repository: { namespaceId: namespace.id, name: "hello" } });
console.log(`created ${registry.name}/${namespace.name}/${repository.name}`);

// On a HOSTED registry a tag names a manifest the repository holds, so push one first.
const digest = await pushTinyImage(`${registry.name}/${namespace.name}/${repository.name}`);
const tag = await client.tags.createTag({ tag: { repositoryId: repository.id, name: "1.0", digest } });
console.log(`tagged ${tag.name} -> ${tag.digest} (${tag.mediaType}, ${tag.sizeBytes} bytes)`);

const namespaces = await client.namespaces.listNamespaces({ registryId: registry.id });
const repositories = await client.repositories.listRepositories({ namespaceId: namespace.id });
const tags = await client.tags.listTags({ repositoryId: repository.id, orderBy: "push_time desc" });
console.log(`registry ${registry.name} (${registry.id})`);
for (const n of namespaces.namespaces) console.log(`  namespace ${n.name}`);
for (const r of repositories.repositories) console.log(`    repository ${r.name}`);
for (const t of tags.tags) console.log(`      tag ${t.name} ${t.digest}`);

await client.registries.deleteRegistry({ id: registry.id, force: true });
console.log(`deleted ${registry.name}`);

/** A config blob, one layer and an OCI manifest, pushed by digest; returns the manifest digest. */
async function pushTinyImage(image: string): Promise<string> {
  const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  const config = new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
  const layer = new TextEncoder().encode("hello from examples/catalog.ts\n");
  for (const blob of [config, layer]) {
    const res = await fetch(`${baseUrl}/v2/${image}/blobs/uploads/?digest=${sha256(blob)}`, { method: "POST", headers: registryAuth, body: blob });
    if (res.status !== 201) throw new Error(`blob push: HTTP ${res.status} ${await res.text()}`);
  }
  const manifest = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length }],
    }),
  );
  const digest = sha256(manifest);
  const res = await fetch(`${baseUrl}/v2/${image}/manifests/${digest}`, {
    method: "PUT",
    headers: { ...registryAuth, "content-type": "application/vnd.oci.image.manifest.v1+json" },
    body: manifest,
  });
  if (res.status !== 201) throw new Error(`manifest push: HTTP ${res.status} ${await res.text()}`);
  return digest;
}
