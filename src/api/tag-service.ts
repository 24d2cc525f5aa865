import type { ServiceImpl } from "@connectrpc/connect";
import { TagSchema, TagService } from "../../gen/artifact/v1/tag_pb.js";
import { invalidArgument } from "../domain/errors.js";
import { checkDigest, checkMediaType, checkTagName } from "../domain/names.js";
import type { Store } from "../store/index.js";
import type { TagPatch } from "../store/tags.js";
import { auditTrail, visibilityOf } from "./caller.js";
import { listRequest, tagToProto } from "./convert.js";
import { fieldsToUpdate } from "./update-mask.js";
import { optionalId, requireId, requireMessage, validate } from "./validate.js";

function sizeBytes(value: bigint): number {
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw invalidArgument(`tag.size_bytes: must be from 0 to ${Number.MAX_SAFE_INTEGER} (got ${value})`);
  }
  return Number(value);
}

export function tagService(store: Store): ServiceImpl<typeof TagService> {
  return {
    async createTag(req, ctx) {
      const t = requireMessage("tag", req.tag);
      const row = await store.tags.create(
        {
          repositoryId: requireId("tag.repository_id", t.repositoryId),
          name: validate("tag.name", t.name, checkTagName),
          digest: validate("tag.digest", t.digest, checkDigest),
          mediaType: validate("tag.media_type", t.mediaType, checkMediaType),
          sizeBytes: sizeBytes(t.sizeBytes),
        },
        auditTrail(ctx),
      );
      return tagToProto(row);
    },

    async getTag(req) {
      return tagToProto(await store.tags.get(requireId("id", req.id)));
    },

    async updateTag(req, ctx) {
      const t = requireMessage("tag", req.tag);
      const id = requireId("tag.id", t.id);
      const fields = fieldsToUpdate(TagSchema, req.updateMask, () => false);
      const patch: TagPatch = {};
      if (fields.has("name")) patch.name = validate("tag.name", t.name, checkTagName);
      if (fields.has("digest")) patch.digest = validate("tag.digest", t.digest, checkDigest);
      if (fields.has("media_type")) patch.mediaType = validate("tag.media_type", t.mediaType, checkMediaType);
      if (fields.has("size_bytes")) patch.sizeBytes = sizeBytes(t.sizeBytes);
      return tagToProto(await store.tags.update(id, patch, t.etag, auditTrail(ctx)));
    },

    async deleteTag(req, ctx) {
      await store.tags.delete(requireId("id", req.id), { etag: req.etag }, auditTrail(ctx));
      return {};
    },

    async listTags(req, ctx) {
      const page = await store.tags.list(listRequest(req), { repositoryId: optionalId("repository_id", req.repositoryId) }, visibilityOf(ctx));
      return { tags: page.items.map(tagToProto), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },
  };
}
