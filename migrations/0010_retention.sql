CREATE TABLE "retention_policies" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"registry_id" uuid NOT NULL,
	"namespace_id" uuid,
	"repository_id" uuid,
	"keep" jsonb,
	"untagged_grace_ms" bigint,
	"delete_immutable" boolean DEFAULT false NOT NULL,
	"disabled" boolean DEFAULT false NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"create_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"update_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "retention_policies_scope_unique" UNIQUE NULLS NOT DISTINCT("registry_id","namespace_id","repository_id"),
	CONSTRAINT "retention_policies_scope_check" CHECK ("retention_policies"."repository_id" is null or "retention_policies"."namespace_id" is not null)
);
--> statement-breakpoint
CREATE TABLE "tag_pulls" (
	"tag_id" uuid PRIMARY KEY NOT NULL,
	"last_pull_time" timestamp (3) with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "manifests" ADD COLUMN "last_pull_time" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "retention_policies" ADD CONSTRAINT "retention_policies_registry_id_registries_id_fk" FOREIGN KEY ("registry_id") REFERENCES "public"."registries"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "retention_policies" ADD CONSTRAINT "retention_policies_namespace_id_namespaces_id_fk" FOREIGN KEY ("namespace_id") REFERENCES "public"."namespaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "retention_policies" ADD CONSTRAINT "retention_policies_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tag_pulls" ADD CONSTRAINT "tag_pulls_tag_id_tags_id_fk" FOREIGN KEY ("tag_id") REFERENCES "public"."tags"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "retention_policies_namespace_idx" ON "retention_policies" USING btree ("namespace_id");--> statement-breakpoint
CREATE INDEX "retention_policies_repository_idx" ON "retention_policies" USING btree ("repository_id");--> statement-breakpoint
CREATE INDEX "retention_policies_create_time_idx" ON "retention_policies" USING btree ("create_time","id");--> statement-breakpoint
CREATE INDEX "retention_policies_update_time_idx" ON "retention_policies" USING btree ("update_time","id");