CREATE TABLE "immutability_rules" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"registry_id" uuid NOT NULL,
	"namespace_id" uuid,
	"repository_id" uuid,
	"tag_pattern" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"create_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"update_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "immutability_rules_scope_check" CHECK ("immutability_rules"."repository_id" is null or "immutability_rules"."namespace_id" is not null)
);
--> statement-breakpoint
ALTER TABLE "immutability_rules" ADD CONSTRAINT "immutability_rules_registry_id_registries_id_fk" FOREIGN KEY ("registry_id") REFERENCES "public"."registries"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "immutability_rules" ADD CONSTRAINT "immutability_rules_namespace_id_namespaces_id_fk" FOREIGN KEY ("namespace_id") REFERENCES "public"."namespaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "immutability_rules" ADD CONSTRAINT "immutability_rules_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "immutability_rules_scope_idx" ON "immutability_rules" USING btree ("registry_id","namespace_id","repository_id");--> statement-breakpoint
CREATE INDEX "immutability_rules_namespace_idx" ON "immutability_rules" USING btree ("namespace_id");--> statement-breakpoint
CREATE INDEX "immutability_rules_repository_idx" ON "immutability_rules" USING btree ("repository_id");--> statement-breakpoint
CREATE INDEX "immutability_rules_create_time_idx" ON "immutability_rules" USING btree ("create_time","id");--> statement-breakpoint
CREATE INDEX "immutability_rules_update_time_idx" ON "immutability_rules" USING btree ("update_time","id");