// What a caller may see, as SQL: a repository is visible when its namespace or registry is public,
// or bound to the caller (src/auth/policy.ts readableScope). Lists, lookups by name, searches,
// the /v2/ catalog and cross-repository mounts share these conditions.
import { sql, type SQL } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import { namespaces, registries, repositories } from "../db/schema.js";
import type { Visibility, VisibilitySql } from "./listing.js";

/** The visibility as placeholders, for prepared statements; `visibilityParameters` gives their values. */
export const VISIBILITY_SQL: VisibilitySql = {
  registries: sql`string_to_array(${sql.placeholder("visRegistries")}, ',')::uuid[]`,
  namespaces: sql`string_to_array(${sql.placeholder("visNamespaces")}, ',')::uuid[]`,
  account: sql`${sql.placeholder("visAccount")}::uuid`,
};

export function visibilityParameters(v: Visibility): Record<string, unknown> {
  return { visRegistries: v.registries.join(","), visNamespaces: v.namespaces.join(","), visAccount: v.account ?? null };
}

/** A visibility's ids as SQL values (for queries that are not prepared). */
export function visibilityValues(v: Visibility): VisibilitySql {
  return {
    registries: sql`string_to_array(${v.registries.join(",")}, ',')::uuid[]`,
    namespaces: sql`string_to_array(${v.namespaces.join(",")}, ',')::uuid[]`,
    account: sql`${v.account ?? null}::uuid`,
  };
}

/** The repository with this id is visible. */
export function repositoryVisible(repositoryId: PgColumn | SQL, v: VisibilitySql): SQL {
  return sql`exists (select 1 from ${repositories} vp join ${namespaces} vn on vn.id = vp.namespace_id join ${registries} vr on vr.id = vn.registry_id
    where vp.id = ${repositoryId} and (vn.public or vr.public or vn.id = any(${v.namespaces}) or vr.id = any(${v.registries})))`;
}

/** The registry row is visible: public, bound, or holding a namespace that is public or bound (someone may need to find their way there). */
export function registryVisible(v: VisibilitySql): SQL {
  return sql`(${registries.public} or ${registries.id} = any(${v.registries}) or exists (select 1 from ${namespaces} n
    where n.registry_id = ${registries.id} and (n.public or n.id = any(${v.namespaces}))))`;
}

/** The namespace row is visible (its registry read by id: for queries that do not join it). */
export function namespaceVisible(v: VisibilitySql): SQL {
  return sql`(${namespaces.public} or ${namespaces.id} = any(${v.namespaces}) or ${namespaces.registryId} = any(${v.registries})
    or exists (select 1 from ${registries} r where r.id = ${namespaces.registryId} and r.public))`;
}

/** With the namespace and its registry joined in (src/store/views.ts): what is in that namespace is visible. */
export function joinedVisible(v: VisibilitySql): SQL {
  return sql`(${namespaces.public} or ${registries.public} or ${namespaces.id} = any(${v.namespaces}) or ${registries.id} = any(${v.registries}))`;
}
