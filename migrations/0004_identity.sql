CREATE TABLE "accounts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text COLLATE "C" NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"create_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"update_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"kind" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"password_hash" text,
	"disabled" boolean DEFAULT false NOT NULL,
	CONSTRAINT "accounts_kind_check" CHECK ("accounts"."kind" in ('user', 'robot')),
	CONSTRAINT "accounts_robot_password_check" CHECK ("accounts"."kind" = 'user' or "accounts"."password_hash" is null)
);
--> statement-breakpoint
CREATE TABLE "api_tokens" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"account_id" uuid NOT NULL,
	"name" text COLLATE "C" NOT NULL,
	"secret_hash" text NOT NULL,
	"expire_time" timestamp (3) with time zone,
	"last_use_time" timestamp (3) with time zone,
	"revoke_time" timestamp (3) with time zone,
	"create_time" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "audit_events" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"event_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"actor_id" uuid,
	"actor_name" text NOT NULL,
	"action" text NOT NULL,
	"resource_type" text NOT NULL,
	"resource_id" text DEFAULT '' NOT NULL,
	"resource_name" text DEFAULT '' NOT NULL,
	"request_id" text DEFAULT '' NOT NULL,
	"client_address" text DEFAULT '' NOT NULL,
	"outcome" text NOT NULL,
	"detail" text DEFAULT '' NOT NULL,
	CONSTRAINT "audit_events_outcome_check" CHECK ("audit_events"."outcome" in ('success', 'denied', 'failure'))
);
--> statement-breakpoint
CREATE TABLE "auth_throttle" (
	"key" text PRIMARY KEY NOT NULL,
	"failures" integer NOT NULL,
	"last_failure" timestamp (3) with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "role_bindings" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"account_id" uuid NOT NULL,
	"role" text NOT NULL,
	"registry_id" uuid,
	"namespace_id" uuid,
	"create_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "role_bindings_unique" UNIQUE NULLS NOT DISTINCT("account_id","role","registry_id","namespace_id"),
	CONSTRAINT "role_bindings_role_check" CHECK ("role_bindings"."role" in ('reader', 'writer', 'admin')),
	CONSTRAINT "role_bindings_scope_check" CHECK ("role_bindings"."namespace_id" is null or "role_bindings"."registry_id" is not null)
);
--> statement-breakpoint
CREATE TABLE "signing_keys" (
	"kid" text PRIMARY KEY NOT NULL,
	"private_key" text NOT NULL,
	"public_key" jsonb NOT NULL,
	"create_time" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"retire_time" timestamp (3) with time zone
);
--> statement-breakpoint
ALTER TABLE "namespaces" ADD COLUMN "public" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "registries" ADD COLUMN "public" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "api_tokens" ADD CONSTRAINT "api_tokens_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "role_bindings" ADD CONSTRAINT "role_bindings_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "role_bindings" ADD CONSTRAINT "role_bindings_registry_id_registries_id_fk" FOREIGN KEY ("registry_id") REFERENCES "public"."registries"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "role_bindings" ADD CONSTRAINT "role_bindings_namespace_id_namespaces_id_fk" FOREIGN KEY ("namespace_id") REFERENCES "public"."namespaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "accounts_name_unique" ON "accounts" USING btree ("name");--> statement-breakpoint
CREATE INDEX "accounts_create_time_idx" ON "accounts" USING btree ("create_time","id");--> statement-breakpoint
CREATE INDEX "accounts_update_time_idx" ON "accounts" USING btree ("update_time","id");--> statement-breakpoint
CREATE UNIQUE INDEX "api_tokens_secret_hash_unique" ON "api_tokens" USING btree ("secret_hash");--> statement-breakpoint
CREATE INDEX "api_tokens_account_create_time_idx" ON "api_tokens" USING btree ("account_id","create_time","id");--> statement-breakpoint
CREATE INDEX "api_tokens_create_time_idx" ON "api_tokens" USING btree ("create_time","id");--> statement-breakpoint
CREATE INDEX "api_tokens_name_idx" ON "api_tokens" USING btree ("name","id");--> statement-breakpoint
CREATE INDEX "audit_events_time_idx" ON "audit_events" USING btree ("event_time","id");--> statement-breakpoint
CREATE INDEX "audit_events_actor_id_idx" ON "audit_events" USING btree ("actor_id","event_time");--> statement-breakpoint
CREATE INDEX "audit_events_actor_name_idx" ON "audit_events" USING btree ("actor_name","event_time");--> statement-breakpoint
CREATE INDEX "audit_events_action_idx" ON "audit_events" USING btree ("action","event_time");--> statement-breakpoint
CREATE INDEX "audit_events_resource_id_idx" ON "audit_events" USING btree ("resource_id","event_time");--> statement-breakpoint
CREATE INDEX "audit_events_resource_name_idx" ON "audit_events" USING btree ("resource_name","event_time");--> statement-breakpoint
CREATE INDEX "role_bindings_create_time_idx" ON "role_bindings" USING btree ("create_time","id");--> statement-breakpoint
CREATE INDEX "role_bindings_registry_idx" ON "role_bindings" USING btree ("registry_id");--> statement-breakpoint
CREATE INDEX "role_bindings_namespace_idx" ON "role_bindings" USING btree ("namespace_id");