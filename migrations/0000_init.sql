CREATE TABLE "namespaces" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text COLLATE "C" NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"create_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"update_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"registry_id" uuid NOT NULL
);
--> statement-breakpoint
CREATE TABLE "registries" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text COLLATE "C" NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"create_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"update_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"kind" text NOT NULL,
	"url" text DEFAULT '' NOT NULL,
	"insecure" boolean DEFAULT false NOT NULL,
	"credential_sealed" text,
	CONSTRAINT "registries_kind_check" CHECK ("registries"."kind" in ('hosted', 'remote')),
	CONSTRAINT "registries_url_check" CHECK (("registries"."kind" = 'hosted') = ("registries"."url" = '')),
	CONSTRAINT "registries_hosted_check" CHECK ("registries"."kind" = 'remote' or (not "registries"."insecure" and "registries"."credential_sealed" is null))
);
--> statement-breakpoint
CREATE TABLE "repositories" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text COLLATE "C" NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"create_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"update_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"namespace_id" uuid NOT NULL
);
--> statement-breakpoint
CREATE TABLE "settings" (
	"key" text PRIMARY KEY NOT NULL,
	"value" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tags" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text COLLATE "C" NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"create_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"update_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"repository_id" uuid NOT NULL,
	"digest" text NOT NULL,
	"media_type" text DEFAULT '' NOT NULL,
	"size_bytes" bigint DEFAULT 0 NOT NULL,
	"push_time" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "namespaces" ADD CONSTRAINT "namespaces_registry_id_registries_id_fk" FOREIGN KEY ("registry_id") REFERENCES "public"."registries"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "repositories" ADD CONSTRAINT "repositories_namespace_id_namespaces_id_fk" FOREIGN KEY ("namespace_id") REFERENCES "public"."namespaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tags" ADD CONSTRAINT "tags_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "namespaces_registry_name_unique" ON "namespaces" USING btree ("registry_id","name");--> statement-breakpoint
CREATE INDEX "namespaces_registry_create_time_idx" ON "namespaces" USING btree ("registry_id","create_time","id");--> statement-breakpoint
CREATE INDEX "namespaces_registry_update_time_idx" ON "namespaces" USING btree ("registry_id","update_time","id");--> statement-breakpoint
CREATE INDEX "namespaces_name_idx" ON "namespaces" USING btree ("name","id");--> statement-breakpoint
CREATE INDEX "namespaces_create_time_idx" ON "namespaces" USING btree ("create_time","id");--> statement-breakpoint
CREATE INDEX "namespaces_update_time_idx" ON "namespaces" USING btree ("update_time","id");--> statement-breakpoint
CREATE UNIQUE INDEX "registries_name_unique" ON "registries" USING btree ("name");--> statement-breakpoint
CREATE INDEX "registries_create_time_idx" ON "registries" USING btree ("create_time","id");--> statement-breakpoint
CREATE INDEX "registries_update_time_idx" ON "registries" USING btree ("update_time","id");--> statement-breakpoint
CREATE UNIQUE INDEX "repositories_namespace_name_unique" ON "repositories" USING btree ("namespace_id","name");--> statement-breakpoint
CREATE INDEX "repositories_namespace_create_time_idx" ON "repositories" USING btree ("namespace_id","create_time","id");--> statement-breakpoint
CREATE INDEX "repositories_namespace_update_time_idx" ON "repositories" USING btree ("namespace_id","update_time","id");--> statement-breakpoint
CREATE INDEX "repositories_name_idx" ON "repositories" USING btree ("name","id");--> statement-breakpoint
CREATE INDEX "repositories_create_time_idx" ON "repositories" USING btree ("create_time","id");--> statement-breakpoint
CREATE INDEX "repositories_update_time_idx" ON "repositories" USING btree ("update_time","id");--> statement-breakpoint
CREATE UNIQUE INDEX "tags_repository_name_unique" ON "tags" USING btree ("repository_id","name");--> statement-breakpoint
CREATE INDEX "tags_repository_create_time_idx" ON "tags" USING btree ("repository_id","create_time","id");--> statement-breakpoint
CREATE INDEX "tags_repository_update_time_idx" ON "tags" USING btree ("repository_id","update_time","id");--> statement-breakpoint
CREATE INDEX "tags_repository_push_time_idx" ON "tags" USING btree ("repository_id","push_time","id");--> statement-breakpoint
CREATE INDEX "tags_name_idx" ON "tags" USING btree ("name","id");--> statement-breakpoint
CREATE INDEX "tags_create_time_idx" ON "tags" USING btree ("create_time","id");--> statement-breakpoint
CREATE INDEX "tags_update_time_idx" ON "tags" USING btree ("update_time","id");--> statement-breakpoint
CREATE INDEX "tags_push_time_idx" ON "tags" USING btree ("push_time","id");