-- Written by hand (drizzle-kit does not model triggers): a notice on the "artifact_cache" channel
-- for every committed change that can make an answer the /v2/ read cache holds (src/store/hot-cache.ts)
-- wrong. NOTIFY is sent when the transaction commits, and never when it rolls back; notices with
-- the same payload in one transaction are sent once. Payload "r<repository id>": that
-- repository's entries; "*": everything.
-- Tags need no trigger of their own: every change to them bumps repositories.tags_version
-- (migration 0002), an update of the repository row.
CREATE FUNCTION "notify_cache_repository"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('artifact_cache', 'r' || OLD."id"::text);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "repositories_change_notifies_cache" AFTER UPDATE OR DELETE ON "repositories"
  FOR EACH ROW EXECUTE FUNCTION "notify_cache_repository"();
--> statement-breakpoint
CREATE FUNCTION "notify_cache_manifests_deleted"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  repository uuid;
BEGIN
  FOR repository IN SELECT DISTINCT "repository_id" FROM "old_manifests" LOOP
    PERFORM pg_notify('artifact_cache', 'r' || repository::text);
  END LOOP;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "manifests_delete_notifies_cache" AFTER DELETE ON "manifests"
  REFERENCING OLD TABLE AS "old_manifests" FOR EACH STATEMENT EXECUTE FUNCTION "notify_cache_manifests_deleted"();
--> statement-breakpoint
CREATE FUNCTION "notify_cache_all"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('artifact_cache', '*');
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "registries_change_notifies_cache" AFTER UPDATE OR DELETE ON "registries"
  FOR EACH STATEMENT EXECUTE FUNCTION "notify_cache_all"();
--> statement-breakpoint
CREATE TRIGGER "namespaces_change_notifies_cache" AFTER UPDATE OR DELETE ON "namespaces"
  FOR EACH STATEMENT EXECUTE FUNCTION "notify_cache_all"();
