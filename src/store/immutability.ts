// Immutable tags in the store: every write that could move, rename or delete a tag asks here,
// inside its own transaction and after taking the locks that keep the tag from changing under it,
// whether an immutability rule protects the tag. The rules themselves are managed by
// ImmutabilityRuleStore (immutability-rules.ts); what matches is src/domain/immutability.ts.
//
// The cost on a push by tag is one indexed query (the rules that apply to the repository, with the
// repository's name for messages): the join of the repository to its namespace is by primary key,
// and the rules are found by the (registry_id, …) index. Deletes pay more, only where rules exist.
import { and, asc, eq, gt, inArray, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { immutabilityRules as rules, manifestReferences, manifests, namespaces, registries, repositories, tags } from "../db/schema.js";
import { aborted } from "../domain/errors.js";
import { holdsImmutableTag, immutableTag, protectingRule, type ImmutabilityRuleRef, type ImmutableAttempt } from "../domain/immutability.js";
import type { PolicyScope } from "../domain/policy-scope.js";
import { appliesTo, resolvePolicyScope, scopeOfRow } from "./policy-scope.js";

/** A rule that applies to a repository, with where it is set. */
export interface ApplicableRule extends ImmutabilityRuleRef {
  namespaceId: string | null;
  repositoryId: string | null;
}

/** The rules that apply to one repository, and its image name (for messages). */
interface RepositoryRules {
  rules: ApplicableRule[];
  /** `<registry>/<namespace>/<repository>`; empty when no rule applies (it is not read then). */
  repositoryName: string;
}

/** The rules that apply to a repository (its own, its namespace's, its registry's): one indexed query. */
export async function rulesForRepository(tx: Database, repositoryId: string): Promise<RepositoryRules> {
  const rows = await tx
    .select({
      id: rules.id,
      tagPattern: rules.tagPattern,
      namespaceId: rules.namespaceId,
      repositoryId: rules.repositoryId,
      registryName: registries.name,
      namespaceName: namespaces.name,
      repositoryName: repositories.name,
    })
    .from(repositories)
    .innerJoin(namespaces, eq(namespaces.id, repositories.namespaceId))
    .innerJoin(registries, eq(registries.id, namespaces.registryId))
    .innerJoin(rules, appliesTo(rules, { registryId: registries.id, namespaceId: namespaces.id, repositoryId: repositories.id }))
    .where(eq(repositories.id, repositoryId))
    .orderBy(asc(rules.createTime), asc(rules.id));
  const first = rows[0];
  if (!first) return { rules: [], repositoryName: "" };
  const names = [first.registryName, first.namespaceName, first.repositoryName];
  return {
    repositoryName: names.join("/"),
    rules: rows.map((r) => {
      const scope = scopeOfRow({ registryId: "", namespaceId: r.namespaceId, repositoryId: r.repositoryId });
      const depth = scope.kind === "registry" ? 1 : scope.kind === "namespace" ? 2 : 3;
      return {
        id: r.id,
        tagPattern: r.tagPattern,
        namespaceId: r.namespaceId,
        repositoryId: r.repositoryId,
        scope: { kind: scope.kind, name: names.slice(0, depth).join("/") },
      };
    }),
  };
}

/** The rule protecting `tag` in the repository, with the tag's full reference; undefined when none does. */
export async function protectingRuleFor(tx: Database, repositoryId: string, tag: string): Promise<{ rule: ApplicableRule; fullName: string } | undefined> {
  const found = await rulesForRepository(tx, repositoryId);
  if (found.rules.length === 0) return undefined;
  const rule = protectingRule(found.rules, tag);
  return rule && { rule, fullName: `${found.repositoryName}:${tag}` };
}

/**
 * Refuses a change to a tag a rule protects (moving it, renaming it, deleting it). The caller has
 * locked the tag's row, so it cannot change between this check and the caller's write.
 */
export async function refuseTagChange(
  tx: Database,
  tag: { id?: string; repositoryId: string; name: string },
  attempt: ImmutableAttempt,
  action: string,
): Promise<void> {
  const found = await protectingRuleFor(tx, tag.repositoryId, tag.name);
  if (found) throw immutableTag(found.rule, attempt, { id: tag.id, fullName: found.fullName }, action);
}

/**
 * Refuses deleting a manifest (by digest, its tags with it) when a protected tag points at it or
 * at an index that lists it, however deep. The caller has locked the manifest's row: a push that
 * would tag it, or list it in an index, waits for this transaction.
 */
export async function refuseManifestDelete(tx: Database, repositoryId: string, manifest: { id: string; digest: string }, action: string): Promise<void> {
  const found = await rulesForRepository(tx, repositoryId);
  if (found.rules.length === 0) return;
  const holders = await tx
    .select({ name: tags.name })
    .from(tags)
    .where(
      sql`${tags.manifestId} in (with recursive holder(id, digest) as (
          select ${manifest.id}::uuid, ${manifest.digest}::text
          union
          select m.id, m.digest from ${manifests} m
            join ${manifestReferences} r on r.manifest_id = m.id and r.kind = 'manifest'
            join holder h on r.digest = h.digest
          where m.repository_id = ${repositoryId}::uuid
        ) select id from holder)`,
    )
    .orderBy(asc(tags.name));
  for (const { name } of holders) {
    const rule = protectingRule(found.rules, name);
    if (rule) {
      const what = `manifest ${found.repositoryName}@${manifest.digest}`;
      throw holdsImmutableTag(
        rule,
        { type: "manifest", id: manifest.id, name: `${found.repositoryName}@${manifest.digest}`, what },
        `${found.repositoryName}:${name}`,
        action,
      );
    }
  }
}

const SCAN_BATCH = 5000;

/**
 * Refuses deleting a repository, namespace or registry (with `force`, everything in it) that holds
 * a protected tag. The caller has locked the scope's row (deleteById). Without a rule that applies
 * inside the scope this is one query. With one, the repositories inside are locked (FOR UPDATE:
 * no tag can be written into them until this transaction ends, as the cascade would lock them
 * anyway) and their tags are read in batches and matched.
 */
export async function refuseScopeDelete(tx: Database, scope: PolicyScope, action: string): Promise<void> {
  const within = await rulesWithin(tx, scope);
  if (within.length === 0) return;
  const inScope =
    scope.kind === "repository"
      ? eq(repositories.id, scope.id)
      : scope.kind === "namespace"
        ? eq(repositories.namespaceId, scope.id)
        : inArray(repositories.namespaceId, tx.select({ id: namespaces.id }).from(namespaces).where(eq(namespaces.registryId, scope.id)));
  if (scope.kind !== "repository") await tx.select({ id: repositories.id }).from(repositories).where(inScope).for("update");
  let after: string | undefined;
  for (;;) {
    const batch = await tx
      .select({ id: tags.id, name: tags.name, repositoryId: tags.repositoryId, namespaceId: repositories.namespaceId })
      .from(tags)
      .innerJoin(repositories, eq(repositories.id, tags.repositoryId))
      .where(and(inScope, after === undefined ? undefined : gt(tags.id, after)))
      .orderBy(asc(tags.id))
      .limit(SCAN_BATCH);
    for (const tag of batch) {
      const applicable = within.filter(
        (r) => (r.namespaceId === null || r.namespaceId === tag.namespaceId) && (r.repositoryId === null || r.repositoryId === tag.repositoryId),
      );
      const rule = protectingRule(applicable, tag.name);
      if (rule) {
        const target = await resolvePolicyScope(tx, scope);
        const repository = await resolvePolicyScope(tx, { kind: "repository", id: tag.repositoryId });
        throw holdsImmutableTag(
          { ...rule, scope: await namedScope(tx, rule) },
          { type: scope.kind, id: scope.id, name: target.name, what: `${scope.kind} ${target.name}` },
          `${repository.name}:${tag.name}`,
          action,
        );
      }
    }
    if (batch.length < SCAN_BATCH) return;
    after = batch[batch.length - 1]!.id;
  }
}

/** The rules that apply to some repository inside a scope: set inside it, or on a scope enclosing it. */
async function rulesWithin(tx: Database, scope: PolicyScope): Promise<(ApplicableRule & { registryId: string })[]> {
  const columns = {
    id: rules.id,
    tagPattern: rules.tagPattern,
    registryId: rules.registryId,
    namespaceId: rules.namespaceId,
    repositoryId: rules.repositoryId,
  };
  let rows: { id: string; tagPattern: string; registryId: string; namespaceId: string | null; repositoryId: string | null }[];
  if (scope.kind === "registry") {
    rows = await tx.select(columns).from(rules).where(eq(rules.registryId, scope.id)).orderBy(asc(rules.createTime), asc(rules.id));
  } else if (scope.kind === "namespace") {
    rows = await tx
      .select(columns)
      .from(rules)
      .innerJoin(namespaces, eq(namespaces.id, scope.id))
      .where(sql`(${rules.namespaceId} = ${namespaces.id} or (${rules.namespaceId} is null and ${rules.registryId} = ${namespaces.registryId}))`)
      .orderBy(asc(rules.createTime), asc(rules.id));
  } else {
    // registryId is not read again: every rule found applies to the one repository.
    return (await rulesForRepository(tx, scope.id)).rules.map((r) => ({ ...r, registryId: "" }));
  }
  // Scope names are read only for the refusal's message (namedScope).
  return rows.map((r) => ({ ...r, scope: { kind: scopeOfRow(r).kind, name: "" } }));
}

async function namedScope(tx: Database, rule: ApplicableRule & { registryId: string }): Promise<ImmutabilityRuleRef["scope"]> {
  if (rule.scope.name !== "") return rule.scope;
  const resolved = await resolvePolicyScope(tx, scopeOfRow(rule));
  return { kind: resolved.kind, name: resolved.name };
}

/**
 * Points a protected tag at a manifest, the one time that is allowed: a new tag is inserted; an
 * existing one is left alone when it already points there (a client retrying its push), and the
 * write is refused when it points elsewhere. `on conflict do nothing` waits for a concurrent insert
 * of the same tag to commit, so two first pushes of different manifests cannot both win.
 */
export async function writeProtectedTag(
  tx: Database,
  tag: { repositoryId: string; name: string; manifestId: string; digest: string; mediaType: string; sizeBytes: number },
  protecting: { rule: ApplicableRule; fullName: string },
): Promise<string | undefined> {
  const inserted = await tx.insert(tags).values(tag).onConflictDoNothing().returning({ id: tags.id });
  if (inserted.length > 0) return undefined;
  const [existing] = await tx
    .select({ id: tags.id, digest: tags.digest })
    .from(tags)
    .where(and(eq(tags.repositoryId, tag.repositoryId), eq(tags.name, tag.name)));
  // Deleted between the two statements (only possible once its rule was deleted): try again.
  if (!existing) throw aborted(`tag ${protecting.fullName} changed while it was being pushed; retry`);
  if (existing.digest !== tag.digest) throw immutableTag(protecting.rule, "move", { id: existing.id, fullName: protecting.fullName }, "tag.move");
  return existing.digest;
}
