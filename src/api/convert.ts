// Rows to messages. Only here do database rows meet protobuf types.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NamespaceSchema, type Namespace } from "../../gen/artifact/v1/namespace_pb.js";
import { RegistryKind, RegistrySchema, type Registry } from "../../gen/artifact/v1/registry_pb.js";
import { RepositorySchema, type Repository } from "../../gen/artifact/v1/repository_pb.js";
import { TagSchema, type Tag } from "../../gen/artifact/v1/tag_pb.js";
import type { ListRequest, NamespaceRow, RegistryRow, RepositoryRow, TagRow } from "../store/index.js";

const KINDS = { hosted: RegistryKind.HOSTED, remote: RegistryKind.REMOTE } as const;

export function registryKindFromProto(kind: RegistryKind): RegistryRow["kind"] | undefined {
  if (kind === RegistryKind.HOSTED) return "hosted";
  if (kind === RegistryKind.REMOTE) return "remote";
  return undefined;
}

const common = (row: { id: string; version: number; createTime: Date; updateTime: Date }) => ({
  id: row.id,
  etag: String(row.version),
  createTime: timestampFromDate(row.createTime),
  updateTime: timestampFromDate(row.updateTime),
});

export function registryToProto(row: RegistryRow): Registry {
  return create(RegistrySchema, {
    ...common(row),
    name: row.name,
    kind: KINDS[row.kind],
    url: row.url,
    insecure: row.insecure,
    description: row.description,
    hasCredential: row.credentialSealed !== null,
    autoCreate: row.kind === "hosted" ? row.autoCreate : undefined,
    syncFilter: row.kind === "remote" ? { repositoryPrefix: row.syncRepositoryPrefix, tagPattern: row.syncTagPattern } : undefined,
  });
}

export function namespaceToProto(row: NamespaceRow): Namespace {
  return create(NamespaceSchema, {
    ...common(row),
    registryId: row.registryId,
    name: row.name,
    description: row.description,
  });
}

export function repositoryToProto(row: RepositoryRow): Repository {
  return create(RepositorySchema, {
    ...common(row),
    namespaceId: row.namespaceId,
    name: row.name,
    description: row.description,
  });
}

export function tagToProto(row: TagRow): Tag {
  return create(TagSchema, {
    ...common(row),
    repositoryId: row.repositoryId,
    name: row.name,
    digest: row.digest,
    mediaType: row.mediaType,
    sizeBytes: BigInt(row.sizeBytes),
    pushTime: timestampFromDate(row.pushTime),
  });
}

/** The paging fields every List request has. */
export function listRequest(req: { pageSize: number; pageToken: string; orderBy: string; query: string }): ListRequest {
  return { pageSize: req.pageSize, pageToken: req.pageToken, orderBy: req.orderBy, query: req.query };
}
