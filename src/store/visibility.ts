// What a caller may see, as SQL: a repository is visible when its namespace or registry is public,
// or bound to the caller (src/auth/policy.ts readableScope). Lists, the /v2/ catalog and
// cross-repository mounts share this one condition.
import { sql, type SQL } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import { namespaces, registries, repositories } from "../db/schema.js";
import type { Visibility, VisibilitySql } from "./listing.js";

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
