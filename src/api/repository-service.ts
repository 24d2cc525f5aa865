import type { ServiceImpl } from "@connectrpc/connect";
import { RepositorySchema, RepositoryService } from "../../gen/artifact/v1/repository_pb.js";
import { parseImageName, parseNamespaceName } from "../domain/image-name.js";
import { checkDescription, checkDigest, checkRepositoryName } from "../domain/names.js";
import type { Store } from "../store/index.js";
import type { RepositoryPatch } from "../store/repositories.js";
import { auditTrail, visibilityOf } from "./caller.js";
import { listRequest, repositoryToProto } from "./convert.js";
import { fieldsToUpdate } from "./update-mask.js";
import { optional, parentId, requireId, requireMessage, validate } from "./validate.js";

export function repositoryService(store: Store): ServiceImpl<typeof RepositoryService> {
  return {
    async createRepository(req, ctx) {
      const r = requireMessage("repository", req.repository);
      const row = await store.repositories.create(
        {
          namespaceId: requireId("repository.namespace_id", r.namespaceId),
          name: validate("repository.name", r.name, checkRepositoryName),
          description: validate("repository.description", r.description, checkDescription),
        },
        auditTrail(ctx),
      );
      return repositoryToProto(row);
    },

    async getRepository(req) {
      return repositoryToProto(await store.repositories.get(requireId("id", req.id)));
    },

    async lookupRepository(req, ctx) {
      return repositoryToProto(await store.repositories.lookup(parseImageName(req.name, "name"), visibilityOf(ctx)));
    },

    async updateRepository(req, ctx) {
      const r = requireMessage("repository", req.repository);
      const id = requireId("repository.id", r.id);
      const fields = fieldsToUpdate(RepositorySchema, req.updateMask, () => false);
      const patch: RepositoryPatch = {};
      if (fields.has("name")) patch.name = validate("repository.name", r.name, checkRepositoryName);
      if (fields.has("description")) patch.description = validate("repository.description", r.description, checkDescription);
      return repositoryToProto(await store.repositories.update(id, patch, r.etag, auditTrail(ctx)));
    },

    async deleteRepository(req, ctx) {
      await store.repositories.delete(requireId("id", req.id), { force: req.force, etag: req.etag }, auditTrail(ctx));
      return {};
    },

    async listRepositories(req, ctx) {
      const visibility = visibilityOf(ctx);
      const namespaceId = await parentId(["namespace_id", req.namespaceId], ["namespace_name", req.namespaceName], (name) =>
        store.namespaces.lookup(parseNamespaceName(name, "namespace_name"), visibility),
      );
      const page = await store.repositories.list(listRequest(req), { namespaceId }, visibility);
      return { repositories: page.items.map(repositoryToProto), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },

    async searchRepositories(req, ctx) {
      const page = await store.repositories.search(listRequest(req), { digest: optional("digest", req.digest, checkDigest) }, visibilityOf(ctx));
      return { repositories: page.items.map(repositoryToProto), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },
  };
}
