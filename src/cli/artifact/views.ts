// The JSON a script reads (`--output json`): plain objects with stable names, every key always
// present (null when unset), enums as lower-case words, sizes in bytes, times in ISO 8601.
// No etags or protobuf internals: those are the API's business, and the API is there for them.
import { RegistryKind, type Registry } from "../../../gen/artifact/v1/registry_pb.js";
import type { Namespace } from "../../../gen/artifact/v1/namespace_pb.js";
import type { Repository } from "../../../gen/artifact/v1/repository_pb.js";
import type { Tag } from "../../../gen/artifact/v1/tag_pb.js";
import type { Token } from "../../../gen/artifact/v1/token_pb.js";
import { isoTime, toDate } from "./output.js";

export const kindName = (kind: RegistryKind) => (kind === RegistryKind.HOSTED ? "hosted" : kind === RegistryKind.REMOTE ? "remote" : "unspecified");

export function registryView(r: Registry) {
  return {
    id: r.id,
    name: r.name,
    kind: kindName(r.kind),
    url: r.url || null,
    description: r.description,
    public: r.public,
    insecure: r.insecure,
    autoCreate: r.autoCreate ?? null,
    hasCredential: r.hasCredential,
    syncFilter: { repositoryPrefix: r.syncFilter?.repositoryPrefix ?? "", tagPattern: r.syncFilter?.tagPattern ?? "" },
    createTime: isoTime(r.createTime),
    updateTime: isoTime(r.updateTime),
  };
}

export function namespaceView(n: Namespace, registry: string) {
  return {
    id: n.id,
    registry,
    name: n.name,
    description: n.description,
    public: n.public,
    createTime: isoTime(n.createTime),
    updateTime: isoTime(n.updateTime),
  };
}

export function repositoryView(r: Repository, registry: string, namespace: string) {
  return {
    id: r.id,
    /** `registry/namespace/repository`, the name to pull. */
    image: `${registry}/${namespace}/${r.name}`,
    registry,
    namespace,
    name: r.name,
    description: r.description,
    createTime: isoTime(r.createTime),
    updateTime: isoTime(r.updateTime),
  };
}

export function tagView(t: Tag, image: string) {
  return {
    id: t.id,
    image,
    name: t.name,
    digest: t.digest,
    mediaType: t.mediaType,
    sizeBytes: Number(t.sizeBytes),
    pushTime: isoTime(t.pushTime),
    createTime: isoTime(t.createTime),
    updateTime: isoTime(t.updateTime),
  };
}

export function tokenStatus(t: Token, now = Date.now()): "active" | "revoked" | "expired" {
  if (t.revokeTime) return "revoked";
  const expires = toDate(t.expireTime);
  return expires && expires.getTime() <= now ? "expired" : "active";
}

export function tokenView(t: Token) {
  return {
    id: t.id,
    name: t.name,
    account: t.accountName,
    accountId: t.accountId,
    status: tokenStatus(t),
    createTime: isoTime(t.createTime),
    expireTime: isoTime(t.expireTime),
    lastUseTime: isoTime(t.lastUseTime),
    revokeTime: isoTime(t.revokeTime),
  };
}
