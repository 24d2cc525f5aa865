import type { ServiceImpl } from "@connectrpc/connect";
import {
  RegistryKind,
  RegistryService,
  RegistrySchema,
  type Credential as CredentialMessage,
  type Registry,
  type SyncFilter,
} from "../../gen/artifact/v1/registry_pb.js";
import { invalidArgument } from "../domain/errors.js";
import { checkDescription, checkRegistryName } from "../domain/names.js";
import { checkTagPattern } from "../domain/tag-pattern.js";
import { parseRegistryUrl } from "../domain/registry-url.js";
import { hasControlCharacter } from "../domain/text.js";
import type { Credential, Sealer } from "../secrets.js";
import type { RegistryUpstreams } from "../upstream/registries.js";
import type { Store } from "../store/index.js";
import type { RegistryPatch } from "../store/registries.js";
import { auditTrail, visibilityOf } from "./caller.js";
import { listRequest, registryKindFromProto, registryToProto } from "./convert.js";
import { fieldsToUpdate } from "./update-mask.js";
import { requireId, requireMessage, validate } from "./validate.js";

/** A REMOTE registry's URL as stored: its root, normalised (src/domain/registry-url.ts). */
const registryUrl = (value: string): string => parseRegistryUrl(value, { field: "registry.url" }).origin;

/** A REMOTE registry's sync filter, checked: a path prefix and an RE2 pattern the engine takes. */
function syncFilter(filter: SyncFilter | undefined): { syncRepositoryPrefix: string; syncTagPattern: string } {
  const prefix = filter?.repositoryPrefix ?? "";
  if (prefix.length > 255 || !/^[a-z0-9._/-]*$/.test(prefix)) {
    throw invalidArgument("registry.sync_filter.repository_prefix: at most 255 of lower-case letters, digits, '.', '_', '-' and '/'");
  }
  return { syncRepositoryPrefix: prefix, syncTagPattern: validate("registry.sync_filter.tag_pattern", filter?.tagPattern ?? "", checkTagPattern) };
}

function credentialFromProto(message: CredentialMessage): Credential | null {
  const c = message.kind;
  if (c.case === undefined) return null;
  if (c.case === "token") {
    if (c.value === "" || c.value.length > 8192 || hasControlCharacter(c.value)) {
      throw invalidArgument("registry.credential.token: must be 1 to 8192 printable characters");
    }
    return { kind: "token", token: c.value };
  }
  const { username, password } = c.value;
  if (username === "" || username.length > 256 || username.includes(":") || hasControlCharacter(username)) {
    throw invalidArgument('registry.credential.basic.username: must be 1 to 256 printable characters without ":"');
  }
  if (password === "" || password.length > 4096 || hasControlCharacter(password)) {
    throw invalidArgument("registry.credential.basic.password: must be 1 to 4096 printable characters");
  }
  return { kind: "basic", username, password };
}

// SyncRegistry is implemented in sync-service.ts (over src/sync/) and merged in routes.ts.
export function registryService(store: Store, sealer: Sealer, upstreams: RegistryUpstreams): Omit<ServiceImpl<typeof RegistryService>, "syncRegistry"> {
  const seal = (message: CredentialMessage | undefined): string | null => {
    const credential = message ? credentialFromProto(message) : null;
    return credential ? sealer.seal(credential) : null;
  };

  return {
    async createRegistry(req, ctx) {
      const r = requireMessage("registry", req.registry);
      const kind = registryKindFromProto(r.kind);
      if (!kind) throw invalidArgument("registry.kind: must be REGISTRY_KIND_HOSTED or REGISTRY_KIND_REMOTE");
      checkKindFields(kind, r);
      const row = await store.registries.create(
        {
          name: validate("registry.name", r.name, checkRegistryName),
          kind,
          url: kind === "remote" ? registryUrl(r.url) : "",
          insecure: r.insecure,
          description: validate("registry.description", r.description, checkDescription),
          credentialSealed: seal(r.credential),
          autoCreate: r.autoCreate ?? true,
          ...syncFilter(r.syncFilter),
          public: r.public,
        },
        auditTrail(ctx),
      );
      return registryToProto(row);
    },

    async getRegistry(req) {
      return registryToProto(await store.registries.get(requireId("id", req.id)));
    },

    async lookupRegistry(req, ctx) {
      return registryToProto(await store.registries.lookup(validate("name", req.name, checkRegistryName), visibilityOf(ctx)));
    },

    async updateRegistry(req, ctx) {
      const r = requireMessage("registry", req.registry);
      const id = requireId("registry.id", r.id);
      const fields = fieldsToUpdate(RegistrySchema, req.updateMask, (f) => f === "credential" && r.credential !== undefined);
      const patch: RegistryPatch = {};
      if (fields.has("name")) patch.name = validate("registry.name", r.name, checkRegistryName);
      if (fields.has("description")) patch.description = validate("registry.description", r.description, checkDescription);
      if (fields.has("insecure")) patch.insecure = r.insecure;
      // An empty url is left to the store, which knows the kind: it is right for HOSTED only.
      if (fields.has("url")) patch.url = r.url === "" ? "" : registryUrl(r.url);
      if (fields.has("credential")) patch.credentialSealed = seal(r.credential);
      if (fields.has("auto_create")) patch.autoCreate = r.autoCreate ?? true;
      if (fields.has("sync_filter")) Object.assign(patch, syncFilter(r.syncFilter));
      if (fields.has("public")) patch.public = r.public;
      const row = await store.registries.update(id, patch, r.etag, auditTrail(ctx));
      return registryToProto(row);
    },

    async deleteRegistry(req, ctx) {
      const id = requireId("id", req.id);
      await store.registries.delete(id, { force: req.force, etag: req.etag }, auditTrail(ctx));
      upstreams.forget(id);
      return {};
    },

    async pingRegistry(req) {
      const registry = await store.registries.get(requireId("id", req.id));
      const result = await upstreams.for(registry).ping();
      return {
        reachable: result.reachable,
        authenticated: result.authenticated,
        status: result.status,
        roundTripMs: result.rttMs,
        message: result.message,
        authScheme: result.authScheme === "none" ? "" : result.authScheme,
      };
    },

    async listRegistries(req, ctx) {
      const kind = req.kind === RegistryKind.UNSPECIFIED ? undefined : registryKindFromProto(req.kind);
      if (req.kind !== RegistryKind.UNSPECIFIED && !kind)
        throw invalidArgument(`kind: unknown value ${req.kind}; expected REGISTRY_KIND_HOSTED or REGISTRY_KIND_REMOTE`);
      const page = await store.registries.list(listRequest(req), { kind }, visibilityOf(ctx));
      return { registries: page.items.map(registryToProto), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },
  };
}

/** Fields that only make sense for one kind of registry. */
function checkKindFields(kind: "hosted" | "remote", r: Registry): void {
  if (kind === "hosted") {
    if (r.url !== "") throw invalidArgument("registry.url: a HOSTED registry is served by this service and has no url");
    if (r.insecure) throw invalidArgument("registry.insecure: applies to REMOTE registries only");
    if (r.credential?.kind.case) throw invalidArgument("registry.credential: applies to REMOTE registries only");
    if (r.syncFilter?.repositoryPrefix || r.syncFilter?.tagPattern) {
      throw invalidArgument("registry.sync_filter: applies to REMOTE registries only");
    }
  } else if (r.autoCreate !== undefined) {
    throw invalidArgument("registry.auto_create: applies to HOSTED registries only");
  }
}
