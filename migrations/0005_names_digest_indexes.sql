CREATE INDEX "manifests_digest_idx" ON "manifests" USING btree ("digest");--> statement-breakpoint
CREATE INDEX "tags_digest_idx" ON "tags" USING btree ("digest");