// Where a resource sits, for the policy (src/auth/policy.ts): a tag, repository, namespace or
// registry with its parents' ids, names and public flags, or an image by name, each in one
// prepared query (asked on every call whose principal has no global role that decides alone).
import { and, eq, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { apiTokens, immutabilityRules, namespaces, registries, repositories, retentionPolicies, roleBindings, tags, webhooks } from "../db/schema.js";
import { checkUuid } from "../domain/names.js";
import { guarded } from "./pg-errors.js";

// Ids come straight from requests (auth runs before validation): one that is no UUID finds nothing.
const isUuid = (id: string) => checkUuid(id) === undefined;

export interface RegistryPlace {
  registry: { id: string; name: string; public: boolean };
  /** Some namespace of the registry is public. */
  publicNamespace: boolean;
}

export interface NamespacePlace {
  registry: { id: string; name: string; public: boolean };
  namespace: { id: string; name: string; public: boolean };
}

export interface RepositoryPlace extends NamespacePlace {
  repository: { id: string; name: string };
}

/** An image name's place: the registry, and its namespace and repository when they exist. */
export interface ImagePlace {
  registry: { id: string; name: string; public: boolean };
  namespace?: { id: string; name: string; public: boolean };
  repository?: { id: string; name: string };
}

const registryColumns = { id: registries.id, name: registries.name, public: registries.public };
const namespaceColumns = { id: namespaces.id, name: namespaces.name, public: namespaces.public };

export class AccessStore {
  private readonly queries;

  constructor(db: Database) {
    const p = (name: string) => sql.placeholder(name);
    this.queries = {
      registry: db
        .select({
          registry: registryColumns,
          publicNamespace: sql<boolean>`exists (select 1 from ${namespaces} n where n.registry_id = ${registries.id} and n.public)`,
        })
        .from(registries)
        .where(eq(registries.id, p("id")))
        .prepare("access_registry"),
      namespace: db
        .select({ registry: registryColumns, namespace: namespaceColumns })
        .from(namespaces)
        .innerJoin(registries, eq(registries.id, namespaces.registryId))
        .where(eq(namespaces.id, p("id")))
        .prepare("access_namespace"),
      repository: db
        .select({ registry: registryColumns, namespace: namespaceColumns, repository: { id: repositories.id, name: repositories.name } })
        .from(repositories)
        .innerJoin(namespaces, eq(namespaces.id, repositories.namespaceId))
        .innerJoin(registries, eq(registries.id, namespaces.registryId))
        .where(eq(repositories.id, p("id")))
        .prepare("access_repository"),
      tag: db
        .select({ registry: registryColumns, namespace: namespaceColumns, repository: { id: repositories.id, name: repositories.name } })
        .from(tags)
        .innerJoin(repositories, eq(repositories.id, tags.repositoryId))
        .innerJoin(namespaces, eq(namespaces.id, repositories.namespaceId))
        .innerJoin(registries, eq(registries.id, namespaces.registryId))
        .where(eq(tags.id, p("id")))
        .prepare("access_tag"),
      image: db
        .select({
          registry: registryColumns,
          namespaceId: namespaces.id,
          namespaceName: namespaces.name,
          namespacePublic: namespaces.public,
          repositoryId: repositories.id,
          repositoryName: repositories.name,
        })
        .from(registries)
        .leftJoin(namespaces, and(eq(namespaces.registryId, registries.id), eq(namespaces.name, p("namespace"))))
        .leftJoin(repositories, and(eq(repositories.namespaceId, namespaces.id), eq(repositories.name, p("repository"))))
        .where(eq(registries.name, p("registry")))
        .prepare("access_image"),
      tokenAccount: db
        .select({ accountId: apiTokens.accountId })
        .from(apiTokens)
        .where(eq(apiTokens.id, p("id")))
        .prepare("access_token_account"),
      roleBinding: db
        .select({ accountId: roleBindings.accountId, registryId: roleBindings.registryId, namespaceId: roleBindings.namespaceId })
        .from(roleBindings)
        .where(eq(roleBindings.id, p("id")))
        .prepare("access_role_binding"),
      webhook: db
        .select({ registryId: webhooks.registryId, namespaceId: webhooks.namespaceId })
        .from(webhooks)
        .where(eq(webhooks.id, p("id")))
        .prepare("access_webhook"),
      immutabilityRule: db
        .select({ registryId: immutabilityRules.registryId, namespaceId: immutabilityRules.namespaceId, repositoryId: immutabilityRules.repositoryId })
        .from(immutabilityRules)
        .where(eq(immutabilityRules.id, p("id")))
        .prepare("access_immutability_rule"),
      retentionPolicy: db
        .select({ registryId: retentionPolicies.registryId, namespaceId: retentionPolicies.namespaceId, repositoryId: retentionPolicies.repositoryId })
        .from(retentionPolicies)
        .where(eq(retentionPolicies.id, p("id")))
        .prepare("access_retention_policy"),
      tagDigest: db
        .select({ digest: tags.digest })
        .from(tags)
        .where(and(eq(tags.repositoryId, p("repository")), eq(tags.name, p("tag"))))
        .prepare("access_tag_digest"),
    };
  }

  async registry(id: string): Promise<RegistryPlace | undefined> {
    if (!isUuid(id)) return undefined;
    return (await guarded(() => this.queries.registry.execute({ id })))[0];
  }

  async namespace(id: string): Promise<NamespacePlace | undefined> {
    if (!isUuid(id)) return undefined;
    return (await guarded(() => this.queries.namespace.execute({ id })))[0];
  }

  async repository(id: string): Promise<RepositoryPlace | undefined> {
    if (!isUuid(id)) return undefined;
    return (await guarded(() => this.queries.repository.execute({ id })))[0];
  }

  async tag(id: string): Promise<RepositoryPlace | undefined> {
    if (!isUuid(id)) return undefined;
    return (await guarded(() => this.queries.tag.execute({ id })))[0];
  }

  /** `<registry>/<namespace>/<repository>`: undefined when the registry does not exist. */
  async image(registry: string, namespace: string, repository: string): Promise<ImagePlace | undefined> {
    const [row] = await guarded(() => this.queries.image.execute({ registry, namespace, repository }));
    if (!row) return undefined;
    return {
      registry: row.registry,
      namespace: row.namespaceId ? { id: row.namespaceId, name: row.namespaceName!, public: row.namespacePublic! } : undefined,
      repository: row.repositoryId ? { id: row.repositoryId, name: row.repositoryName! } : undefined,
    };
  }

  /** The account an API token belongs to. */
  async tokenAccount(id: string): Promise<string | undefined> {
    if (!isUuid(id)) return undefined;
    return (await guarded(() => this.queries.tokenAccount.execute({ id })))[0]?.accountId;
  }

  /** A role binding's account and scope ids. */
  async roleBinding(id: string): Promise<{ accountId: string; registryId: string | null; namespaceId: string | null } | undefined> {
    if (!isUuid(id)) return undefined;
    return (await guarded(() => this.queries.roleBinding.execute({ id })))[0];
  }

  /** A webhook's scope: its registry, and its namespace when it has one. */
  async webhook(id: string): Promise<{ registryId: string; namespaceId: string | null } | undefined> {
    if (!isUuid(id)) return undefined;
    return (await guarded(() => this.queries.webhook.execute({ id })))[0];
  }

  /** The scope an immutability rule is set on. */
  async immutabilityRule(id: string): Promise<{ registryId: string; namespaceId: string | null; repositoryId: string | null } | undefined> {
    if (!isUuid(id)) return undefined;
    return (await guarded(() => this.queries.immutabilityRule.execute({ id })))[0];
  }

  /** The scope a retention policy is set on. */
  async retentionPolicy(id: string): Promise<{ registryId: string; namespaceId: string | null; repositoryId: string | null } | undefined> {
    if (!isUuid(id)) return undefined;
    return (await guarded(() => this.queries.retentionPolicy.execute({ id })))[0];
  }

  /** The digest a tag points at now, if the tag exists (an audit event tells a push from a move). */
  async tagDigest(repositoryId: string, tag: string): Promise<string | undefined> {
    if (!isUuid(repositoryId)) return undefined;
    return (await guarded(() => this.queries.tagDigest.execute({ repository: repositoryId, tag })))[0]?.digest;
  }
}
