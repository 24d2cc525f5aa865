ALTER TABLE "repositories" ADD COLUMN "tags_version" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Written by hand below (drizzle-kit does not model triggers): every statement that inserts,
-- updates or deletes tags, foreign-key cascades included, bumps tags_version of the repositories
-- it touched, in the same transaction. /v2/<name>/tags/list caches its answers under this number.
CREATE FUNCTION "bump_repository_tags_version"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE "repositories" SET "tags_version" = "tags_version" + 1
      WHERE "id" IN (SELECT DISTINCT "repository_id" FROM "old_tags");
  END IF;
  IF TG_OP = 'INSERT' THEN
    UPDATE "repositories" SET "tags_version" = "tags_version" + 1
      WHERE "id" IN (SELECT DISTINCT "repository_id" FROM "new_tags");
  ELSIF TG_OP = 'UPDATE' THEN
    UPDATE "repositories" SET "tags_version" = "tags_version" + 1
      WHERE "id" IN (SELECT DISTINCT "repository_id" FROM "new_tags" EXCEPT SELECT DISTINCT "repository_id" FROM "old_tags");
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "tags_insert_bumps_tags_version" AFTER INSERT ON "tags"
  REFERENCING NEW TABLE AS "new_tags" FOR EACH STATEMENT EXECUTE FUNCTION "bump_repository_tags_version"();
--> statement-breakpoint
CREATE TRIGGER "tags_update_bumps_tags_version" AFTER UPDATE ON "tags"
  REFERENCING OLD TABLE AS "old_tags" NEW TABLE AS "new_tags" FOR EACH STATEMENT EXECUTE FUNCTION "bump_repository_tags_version"();
--> statement-breakpoint
CREATE TRIGGER "tags_delete_bumps_tags_version" AFTER DELETE ON "tags"
  REFERENCING OLD TABLE AS "old_tags" FOR EACH STATEMENT EXECUTE FUNCTION "bump_repository_tags_version"();
