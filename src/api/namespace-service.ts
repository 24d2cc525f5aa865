import type { ServiceImpl } from "@connectrpc/connect";
import { NamespaceSchema, NamespaceService } from "../../gen/artifact/v1/namespace_pb.js";
import { parseNamespaceName } from "../domain/image-name.js";
import { checkDescription, checkPathComponent, checkRegistryName } from "../domain/names.js";
import type { Store } from "../store/index.js";
import type { NamespacePatch } from "../store/namespaces.js";
import { auditTrail, visibilityOf } from "./caller.js";
import { listRequest, namespaceToProto } from "./convert.js";
import { fieldsToUpdate } from "./update-mask.js";
import { parentId, requireId, requireMessage, validate } from "./validate.js";

export function namespaceService(store: Store): ServiceImpl<typeof NamespaceService> {
  return {
    async createNamespace(req, ctx) {
      const n = requireMessage("namespace", req.namespace);
      const row = await store.namespaces.create(
        {
          registryId: requireId("namespace.registry_id", n.registryId),
          name: validate("namespace.name", n.name, checkPathComponent),
          description: validate("namespace.description", n.description, checkDescription),
          public: n.public,
        },
        auditTrail(ctx),
      );
      return namespaceToProto(row);
    },

    async getNamespace(req) {
      return namespaceToProto(await store.namespaces.get(requireId("id", req.id)));
    },

    async lookupNamespace(req, ctx) {
      return namespaceToProto(await store.namespaces.lookup(parseNamespaceName(req.name, "name"), visibilityOf(ctx)));
    },

    async updateNamespace(req, ctx) {
      const n = requireMessage("namespace", req.namespace);
      const id = requireId("namespace.id", n.id);
      const fields = fieldsToUpdate(NamespaceSchema, req.updateMask, () => false);
      const patch: NamespacePatch = {};
      if (fields.has("name")) patch.name = validate("namespace.name", n.name, checkPathComponent);
      if (fields.has("description")) patch.description = validate("namespace.description", n.description, checkDescription);
      if (fields.has("public")) patch.public = n.public;
      return namespaceToProto(await store.namespaces.update(id, patch, n.etag, auditTrail(ctx)));
    },

    async deleteNamespace(req, ctx) {
      await store.namespaces.delete(requireId("id", req.id), { force: req.force, etag: req.etag }, auditTrail(ctx));
      return {};
    },

    async listNamespaces(req, ctx) {
      const visibility = visibilityOf(ctx);
      const registryId = await parentId(["registry_id", req.registryId], ["registry_name", req.registryName], (name) =>
        store.registries.lookup(validate("registry_name", name, checkRegistryName), visibility),
      );
      const page = await store.namespaces.list(listRequest(req), { registryId }, visibility);
      return { namespaces: page.items.map(namespaceToProto), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },
  };
}
