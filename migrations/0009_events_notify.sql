-- Written by hand (drizzle-kit does not model triggers): a notice on the "artifact_events" channel
-- when a transaction that wrote events commits (never when it rolls back; identical notices of one
-- transaction are sent once). It wakes every process's webhook deliverer and live WatchEvents
-- streams (src/events/hub.ts); they then read the events table, so the payload says nothing.
CREATE FUNCTION "notify_events"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('artifact_events', '');
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "events_insert_notifies" AFTER INSERT ON "events"
  FOR EACH STATEMENT EXECUTE FUNCTION "notify_events"();
