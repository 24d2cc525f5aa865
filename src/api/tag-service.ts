import type { ServiceImpl } from "@connectrpc/connect";
import { TagSchema, TagService } from "../../gen/artifact/v1/tag_pb.js";
import { invalidArgument } from "../domain/errors.js";
import { parseImageName, parseImageReference } from "../domain/image-name.js";
import { checkDigest, checkMediaType, checkTagName } from "../domain/names.js";
import type { Store } from "../store/index.js";
import type { TagPatch } from "../store/tags.js";
import { auditTrail, visibilityOf } from "./caller.js";
import { listRequest, tagToProto } from "./convert.js";
import { fieldsToUpdate } from "./update-mask.js";
import { optional, parentId, requireId, requireMessage, validate } from "./validate.js";

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

    async lookupTag(req, ctx) {
      const { image, reference } = parseImageReference(req.name, "name");
      if ("digest" in reference) {
        throw invalidArgument(
          `name: ${image.full}@${reference.digest} names a digest, which any number of tags may point at; ListTags with repository_name and digest lists them`,
        );
      }
      return tagToProto(await store.tags.lookup(image, reference.tag, visibilityOf(ctx)));
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
      const visibility = visibilityOf(ctx);
      const digest = optional("digest", req.digest, checkDigest);
      const repositoryId = await parentId(["repository_id", req.repositoryId], ["repository_name", req.repositoryName], (name) =>
        store.repositories.lookup(parseImageName(name, "repository_name"), visibility),
      );
      const page = await store.tags.list(listRequest(req), { repositoryId, digest }, visibility);
      return { tags: page.items.map(tagToProto), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },

    async searchTags(req, ctx) {
      const page = await store.tags.search(listRequest(req), { digest: optional("digest", req.digest, checkDigest) }, visibilityOf(ctx));
      return { tags: page.items.map(tagToProto), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },
  };
}
