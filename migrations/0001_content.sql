CREATE TABLE "blobs" (
	"digest" text PRIMARY KEY NOT NULL,
	"size_bytes" bigint NOT NULL,
	"create_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"push_time" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "manifest_references" (
	"manifest_id" uuid NOT NULL,
	"position" integer NOT NULL,
	"kind" text NOT NULL,
	"digest" text NOT NULL,
	"media_type" text NOT NULL,
	"size_bytes" bigint NOT NULL,
	CONSTRAINT "manifest_references_manifest_id_position_pk" PRIMARY KEY("manifest_id","position"),
	CONSTRAINT "manifest_references_kind_check" CHECK ("manifest_references"."kind" in ('config', 'layer', 'manifest'))
);
--> statement-breakpoint
CREATE TABLE "manifests" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"repository_id" uuid NOT NULL,
	"digest" text NOT NULL,
	"media_type" text NOT NULL,
	"payload" "bytea" NOT NULL,
	"total_size_bytes" bigint NOT NULL,
	"config_digest" text,
	"subject_digest" text,
	"artifact_type" text,
	"annotations" jsonb,
	"create_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"push_time" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "repository_blobs" (
	"repository_id" uuid NOT NULL,
	"digest" text NOT NULL,
	"create_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "repository_blobs_repository_id_digest_pk" PRIMARY KEY("repository_id","digest")
);
--> statement-breakpoint
CREATE TABLE "uploads" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"repository_id" uuid NOT NULL,
	"size_bytes" bigint DEFAULT 0 NOT NULL,
	"create_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"update_time" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "registries" DROP CONSTRAINT "registries_hosted_check";--> statement-breakpoint
ALTER TABLE "registries" ADD COLUMN "auto_create" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "registries" ADD COLUMN "sync_repository_prefix" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "registries" ADD COLUMN "sync_tag_pattern" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "repositories" ADD COLUMN "upstream_name" text;--> statement-breakpoint
ALTER TABLE "tags" ADD COLUMN "manifest_id" uuid;--> statement-breakpoint
ALTER TABLE "manifest_references" ADD CONSTRAINT "manifest_references_manifest_id_manifests_id_fk" FOREIGN KEY ("manifest_id") REFERENCES "public"."manifests"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "manifests" ADD CONSTRAINT "manifests_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "repository_blobs" ADD CONSTRAINT "repository_blobs_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "repository_blobs" ADD CONSTRAINT "repository_blobs_digest_blobs_digest_fk" FOREIGN KEY ("digest") REFERENCES "public"."blobs"("digest") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "uploads" ADD CONSTRAINT "uploads_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "blobs_push_time_idx" ON "blobs" USING btree ("push_time");--> statement-breakpoint
CREATE INDEX "manifest_references_digest_idx" ON "manifest_references" USING btree ("digest");--> statement-breakpoint
CREATE UNIQUE INDEX "manifests_repository_digest_unique" ON "manifests" USING btree ("repository_id","digest");--> statement-breakpoint
CREATE INDEX "manifests_repository_subject_idx" ON "manifests" USING btree ("repository_id","subject_digest");--> statement-breakpoint
CREATE INDEX "manifests_push_time_idx" ON "manifests" USING btree ("push_time");--> statement-breakpoint
CREATE INDEX "repository_blobs_digest_idx" ON "repository_blobs" USING btree ("digest");--> statement-breakpoint
CREATE INDEX "uploads_update_time_idx" ON "uploads" USING btree ("update_time");--> statement-breakpoint
ALTER TABLE "tags" ADD CONSTRAINT "tags_manifest_id_manifests_id_fk" FOREIGN KEY ("manifest_id") REFERENCES "public"."manifests"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "tags_manifest_idx" ON "tags" USING btree ("manifest_id");--> statement-breakpoint
ALTER TABLE "registries" ADD CONSTRAINT "registries_hosted_check" CHECK ("registries"."kind" = 'remote' or (not "registries"."insecure" and "registries"."credential_sealed" is null and "registries"."sync_repository_prefix" = '' and "registries"."sync_tag_pattern" = ''));