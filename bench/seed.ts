// Seeds through the real API (gRPC): one registry, namespace and repository holding `count`
// tags, and the page tokens of a first and a deep ListTags page.
import { randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { NamespaceService } from "../gen/artifact/v1/namespace_pb.js";
import { RegistryKind, RegistryService } from "../gen/artifact/v1/registry_pb.js";
import { RepositoryService } from "../gen/artifact/v1/repository_pb.js";
import { TagService } from "../gen/artifact/v1/tag_pb.js";

export const PAGE_SIZE = 100;

export interface Seeded {
  repositoryId: string;
  tagIds: string[];
  /** Page number (1-based) → the page_token that fetches it. */
  pageTokens: Map<number, string>;
  seconds: number;
}

export async function seedTags(grpcUrl: string, count: number, tokenPages: number[], concurrency = 16): Promise<Seeded> {
  const started = performance.now();
  const transport = createGrpcTransport({ baseUrl: grpcUrl });
  const suffix = randomBytes(4).toString("hex");
  // REMOTE: there a tag is a record of what the upstream says, so CreateTag takes any digest
  // (a HOSTED registry wants the manifest pushed first). The upstream is never contacted.
  const registry = await createClient(RegistryService, transport).createRegistry({
    registry: { name: `bench-${suffix}`, kind: RegistryKind.REMOTE, url: "http://127.0.0.1:9" },
  });
  const namespace = await createClient(NamespaceService, transport).createNamespace({
    namespace: { registryId: registry.id, name: "bench" },
  });
  const repository = await createClient(RepositoryService, transport).createRepository({
    repository: { namespaceId: namespace.id, name: "load" },
  });

  const tags = createClient(TagService, transport);
  const tagIds = new Array<string>(count);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const tag = await tags.createTag({
        tag: {
          repositoryId: repository.id,
          name: `t-${String(i).padStart(6, "0")}`,
          digest: `sha256:${randomBytes(32).toString("hex")}`,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          sizeBytes: BigInt(1_000_000 + i),
        },
      });
      tagIds[i] = tag.id;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));

  // Walk the pages once to learn the tokens of the pages the benchmark fetches.
  const pageTokens = new Map<number, string>([[1, ""]]);
  const last = Math.max(...tokenPages);
  let token = "";
  for (let page = 1; page < last; page++) {
    const res = await tags.listTags({ repositoryId: repository.id, pageSize: PAGE_SIZE, pageToken: token });
    token = res.nextPageToken;
    if (!token) throw new Error(`only ${page} pages of ${PAGE_SIZE}; cannot reach page ${last}`);
    pageTokens.set(page + 1, token);
  }
  return { repositoryId: repository.id, tagIds, pageTokens, seconds: (performance.now() - started) / 1000 };
}
