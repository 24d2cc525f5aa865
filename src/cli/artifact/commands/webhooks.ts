// artifact webhooks list|add|delete|enable|disable|test|deliveries, and artifact events watch: the
// events the service records (pushes, tag moves, deletes, syncs, retention) as people follow them.
import { randomBytes } from "node:crypto";
import type { Event } from "../../../../gen/artifact/v1/event_pb.js";
import { DeliveryStatus, type Delivery, type Webhook } from "../../../../gen/artifact/v1/webhook_pb.js";
import { bool, readStdin, str, type Args, type Group, type Leaf } from "../cli.js";
import { CliError, EXIT, usageError } from "../exit.js";
import { formatFields, formatJson, formatTable, isoTime, relativeTime, shortDigest, toDate } from "../output.js";
import { listPages, moreHint, PAGING_OPTIONS } from "../paging.js";
import { readTokenFile } from "../session.js";

const SCOPE = "<registry>[/<namespace>]";

/** `--types a,b`: event types, each `dev.artifact.…`, or the short form after it (`image.pushed`). */
function eventTypes(args: Args): string[] {
  const text = str(args, "types");
  if (text === undefined) return [];
  const types = text.split(",").map((t) => t.trim());
  if (types.some((t) => t === "")) throw usageError(`--types ${JSON.stringify(text)}: an empty type; expected e.g. image.pushed,tag.deleted`);
  return types.map((t) => (t.startsWith("dev.artifact.") ? t : `dev.artifact.${t}`));
}

const TYPES_OPTION = {
  types: {
    type: "string" as const,
    value: "<t1,t2>",
    description: "only these event types (image.pushed, tag.moved, tag.deleted, manifest.deleted, image.pulled, registry.synced, retention.deleted)",
  },
};

function webhookView(w: Webhook) {
  return {
    id: w.id,
    scopeName: w.scopeName,
    url: w.url,
    eventTypes: w.eventTypes,
    enabled: w.enabled ?? true,
    description: w.description,
    createTime: isoTime(w.createTime),
  };
}

const statusName = (s: DeliveryStatus) => (DeliveryStatus[s] ?? String(s)).replace(/^DELIVERY_STATUS_/, "").toLowerCase();

function deliveryView(d: Delivery) {
  return {
    id: d.id,
    eventId: d.eventId,
    eventType: d.eventType,
    eventPosition: Number(d.eventPosition),
    subject: d.subject,
    status: statusName(d.status),
    attempts: d.attempts,
    responseStatus: d.responseStatus || null,
    lastError: d.lastError || null,
    lastAttemptTime: isoTime(d.lastAttemptTime),
    nextAttemptTime: isoTime(d.nextAttemptTime),
    createTime: isoTime(d.createTime),
  };
}

const list: Leaf = {
  name: "list",
  args: [`[${SCOPE}]`],
  summary: "list webhooks (of a registry or namespace, or all you manage)",
  description: `Lists the webhooks set on a registry (all of them, its namespaces' too) or on one namespace;
without a scope, every webhook you may manage. Secrets are never shown.`,
  options: { ...PAGING_OPTIONS },
  async run(ctx, args) {
    const name = args.positionals[0];
    const scope = name === undefined ? undefined : await ctx.resolver().scope(name, "namespace");
    const listed = await listPages(args, async (page) => {
      const r = await ctx.client().webhooks.listWebhooks({
        ...page,
        registryId: scope?.case === "registryId" ? scope.value : "",
        namespaceId: scope?.case === "namespaceId" ? scope.value : "",
      });
      return { items: r.webhooks, nextPageToken: r.nextPageToken, totalSize: r.totalSize };
    });
    if (ctx.format === "json") {
      ctx.print(formatJson({ webhooks: listed.items.map(webhookView), nextPageToken: listed.nextPageToken, totalSize: listed.totalSize }));
      return;
    }
    ctx.print(
      formatTable(
        ["ID", "SCOPE", "URL", "EVENTS", "ENABLED", "CREATED"],
        listed.items.map((w) => [
          w.id,
          w.scopeName,
          w.url,
          w.eventTypes.length === 0 ? "all" : w.eventTypes.map((t) => t.replace(/^dev\.artifact\./, "")).join(","),
          (w.enabled ?? true) ? "yes" : "no",
          relativeTime(w.createTime),
        ]),
      ),
    );
    moreHint(ctx, listed, "webhooks");
  },
};

const add: Leaf = {
  name: "add",
  args: [SCOPE, "<url>"],
  summary: "POST a registry's or namespace's events to a URL, signed",
  description: `Creates a webhook (admins of the scope): every event of the registry (or of the one
namespace) is POSTed to <url> as a CloudEvent, signed with HMAC-SHA256 under the secret
(x-artifact-signature: t=<unix seconds>,v1=<hex of HMAC over "<t>.<body>">), retried with backoff,
in order per repository. The secret is read from stdin or a file, never from the command line; with
neither, a random one is made and printed once (keep it: the service never shows it again).`,
  options: {
    ...TYPES_OPTION,
    "secret-stdin": { type: "boolean", description: "read the signing secret from stdin" },
    "secret-file": { type: "string", value: "<file>", description: "read the signing secret from a file" },
    description: { type: "string", value: "<text>", description: "what the webhook is for" },
    disabled: { type: "boolean", description: "create it disabled (no deliveries until enabled)" },
  },
  examples: [
    "artifact webhooks add local https://ci.example.com/hooks/registry --types image.pushed",
    "artifact webhooks add local/team https://hooks.example.com/x --secret-file ./hook-secret",
  ],
  async run(ctx, args) {
    const scope = await ctx.resolver().scope(args.positionals[0]!, "namespace");
    const file = str(args, "secret-file");
    if (bool(args, "secret-stdin") && file !== undefined) throw usageError("webhooks add: give --secret-stdin or --secret-file, not both");
    const made = !bool(args, "secret-stdin") && file === undefined;
    const secret = bool(args, "secret-stdin")
      ? await readStdin(ctx)
      : file !== undefined
        ? readTokenFile(file, "--secret-file")
        : randomBytes(32).toString("hex");
    const webhook = await ctx.client().webhooks.createWebhook({
      webhook: {
        registryId: scope.case === "registryId" ? scope.value : "",
        namespaceId: scope.case === "namespaceId" ? scope.value : "",
        url: args.positionals[1]!,
        eventTypes: eventTypes(args),
        secret,
        enabled: !bool(args, "disabled"),
        description: str(args, "description") ?? "",
      },
    });
    if (ctx.format === "json") ctx.print(formatJson({ ...webhookView(webhook), ...(made ? { secret } : {}) }));
    else {
      ctx.print(`Added webhook ${webhook.id}: events of ${webhook.scopeName} go to ${webhook.url}.\n`);
      if (made) ctx.print(`Signing secret (shown once): ${secret}\n`);
    }
  },
};

const remove: Leaf = {
  name: "delete",
  args: ["<id>"],
  summary: "delete a webhook (its pending deliveries are dropped)",
  description: `Deletes the webhook with this id (artifact webhooks list shows ids), with its delivery log.`,
  async run(ctx, args) {
    const id = args.positionals[0]!;
    const webhook = await ctx.client().webhooks.getWebhook({ id });
    await ctx.client().webhooks.deleteWebhook({ id, etag: webhook.etag });
    if (ctx.format === "json") ctx.print(formatJson({ ...webhookView(webhook), action: "deleted" }));
    else ctx.print(`Deleted webhook ${webhook.id} (${webhook.url}).\n`);
  },
};

function toggle(enabled: boolean): Leaf {
  return {
    name: enabled ? "enable" : "disable",
    args: ["<id>"],
    summary: enabled ? "send events to a webhook again (pending deliveries resume)" : "stop sending events to a webhook (pending deliveries wait)",
    description: enabled
      ? `Enables the webhook: deliveries that waited while it was disabled go out, in order.`
      : `Disables the webhook: no delivery is made for new events, and pending ones wait until it is enabled.`,
    async run(ctx, args) {
      const id = args.positionals[0]!;
      const current = await ctx.client().webhooks.getWebhook({ id });
      const webhook = await ctx.client().webhooks.updateWebhook({ webhook: { id, enabled, etag: current.etag }, updateMask: { paths: ["enabled"] } });
      if (ctx.format === "json") ctx.print(formatJson(webhookView(webhook)));
      else ctx.print(`Webhook ${webhook.id} (${webhook.url}) is ${enabled ? "enabled" : "disabled"}.\n`);
    },
  };
}

const test: Leaf = {
  name: "test",
  args: ["<id>"],
  summary: "send a test event to a webhook now and say how the endpoint answered",
  description: `POSTs a dev.artifact.webhook.test event, signed like every delivery, and prints the
endpoint's answer. Exit status 0 when it answered 2xx, 1 otherwise.`,
  async run(ctx, args) {
    const r = await ctx.client().webhooks.testWebhook({ id: args.positionals[0]! });
    const result = {
      delivered: r.delivered,
      responseStatus: r.responseStatus || null,
      error: r.error || null,
      eventId: r.eventId,
      durationMs: Math.round(r.durationMs),
    };
    if (ctx.format === "json") ctx.print(formatJson(result));
    else
      ctx.print(
        formatFields([
          ["Delivered", r.delivered ? "yes" : "no"],
          ["Status", r.responseStatus ? String(r.responseStatus) : "no answer"],
          ...(r.error ? ([["Error", r.error]] as [string, string][]) : []),
          ["Took", `${result.durationMs} ms`],
        ]),
      );
    if (!r.delivered) return EXIT.failure;
  },
};

const STATUSES: Record<string, DeliveryStatus> = { pending: DeliveryStatus.PENDING, delivered: DeliveryStatus.DELIVERED, failed: DeliveryStatus.FAILED };

const deliveries: Leaf = {
  name: "deliveries",
  args: ["<id>"],
  summary: "a webhook's delivery log: status, attempts, the endpoint's last answer",
  description: `Lists the webhook's deliveries, newest first: each event's status (pending, delivered,
failed), attempts, the last HTTP status and error, and when the next attempt is due.`,
  options: {
    status: {
      type: "string",
      value: "<status>",
      description: "only pending, delivered or failed deliveries",
      check: (v) => (v in STATUSES ? undefined : "expected pending, delivered or failed"),
    },
    ...PAGING_OPTIONS,
  },
  async run(ctx, args) {
    const webhookId = args.positionals[0]!;
    const status = STATUSES[str(args, "status") ?? ""] ?? DeliveryStatus.UNSPECIFIED;
    const listed = await listPages(args, async (page) => {
      const r = await ctx.client().webhooks.listDeliveries({ ...page, webhookId, status });
      return { items: r.deliveries, nextPageToken: r.nextPageToken, totalSize: r.totalSize };
    });
    if (ctx.format === "json") {
      ctx.print(formatJson({ deliveries: listed.items.map(deliveryView), nextPageToken: listed.nextPageToken, totalSize: listed.totalSize }));
      return;
    }
    ctx.print(
      formatTable(
        ["EVENT", "TYPE", "SUBJECT", "STATUS", "ATTEMPTS", "LAST ANSWER", "CREATED", "NEXT ATTEMPT"],
        listed.items.map((d) => [
          String(d.eventPosition),
          d.eventType.replace(/^dev\.artifact\./, ""),
          d.subject,
          statusName(d.status),
          String(d.attempts),
          d.responseStatus ? String(d.responseStatus) : d.lastError ? d.lastError.slice(0, 60) : "",
          relativeTime(d.createTime),
          d.status === DeliveryStatus.PENDING && d.nextAttemptTime ? relativeTime(d.nextAttemptTime) : "",
        ]),
        [0, 4],
      ),
    );
    moreHint(ctx, listed, "deliveries");
  },
};

export const webhooks: Group = {
  name: "webhooks",
  summary: "list, add, delete, enable, disable and test webhooks; read their delivery log",
  subcommands: [list, add, remove, toggle(true), toggle(false), test, deliveries],
  default: "list",
};

function eventView(e: Event) {
  const d = e.data;
  return {
    position: Number(e.position),
    id: e.id,
    type: e.type,
    time: isoTime(e.time),
    subject: e.subject,
    tag: d?.tag || null,
    digest: d?.digest || null,
    previousDigest: d?.previousDigest || null,
    tags: d?.tags.length ? d.tags : null,
    reason: d?.reason || null,
    actor: d?.actor?.name || null,
  };
}

/** One line per event, as `tail -f` would print it. */
function eventLine(e: Event): string {
  const d = e.data;
  const what = [
    d?.tag ? `:${d.tag}` : "",
    d?.digest ? ` ${shortDigest(d.digest)}` : "",
    d?.previousDigest ? ` (was ${shortDigest(d.previousDigest)})` : "",
  ].join("");
  const time = toDate(e.time)?.toISOString() ?? "";
  return `${String(e.position).padStart(6)}  ${time}  ${e.type.replace(/^dev\.artifact\./, "").padEnd(17)}  ${e.subject}${what}${d?.actor?.name ? `  by ${d.actor.name}` : ""}${d?.reason ? `  (${d.reason})` : ""}\n`;
}

const watch: Leaf = {
  name: "watch",
  args: [`[${SCOPE}]`],
  summary: "print events as they are committed (pushes, tag moves, deletes, syncs...)",
  description: `Follows the event stream (WatchEvents) of a registry or namespace, or of everything you
may read: one line per event, or with -o ndjson one JSON object per line. --from <position> replays
the events after that position first (0: the oldest kept); each line starts with the event's
position, so a later watch resumes with --from <last position>. Runs until interrupted, or with
--no-follow until the events recorded so far are printed.`,
  options: {
    from: {
      type: "string",
      value: "<position>",
      description: "replay the events after this position first (0: all kept)",
      check: (v) => (/^[0-9]{1,18}$/.test(v) ? undefined : "expected a position (a whole number ≥ 0)"),
    },
    follow: { type: "boolean", negatable: true, description: "keep printing new events (default); --no-follow stops once the past ones are printed" },
    ...TYPES_OPTION,
  },
  outputs: ["table", "ndjson"],
  examples: ["artifact events watch local --types image.pushed", "artifact events watch local/team --from 0 --no-follow -o ndjson"],
  async run(ctx, args) {
    const name = args.positionals[0];
    const scope = name === undefined ? undefined : await ctx.resolver().scope(name, "namespace");
    const from = str(args, "from");
    const follow = bool(args, "follow") !== false;
    if (!follow && from === undefined) throw usageError("--no-follow needs --from: without it there is nothing but what comes next");
    const abort = new AbortController();
    const stop = () => abort.abort();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    try {
      const stream = ctx.client().events.watchEvents(
        {
          afterPosition: from === undefined ? undefined : BigInt(from),
          registryId: scope?.case === "registryId" ? scope.value : "",
          namespaceId: scope?.case === "namespaceId" ? scope.value : "",
          types: eventTypes(args),
        },
        { signal: abort.signal },
      );
      for await (const batch of stream) {
        for (const e of batch.events) ctx.print(ctx.format === "ndjson" ? JSON.stringify(eventView(e)) + "\n" : eventLine(e));
        if (batch.live && !follow) break;
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
    } finally {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
    }
    if (abort.signal.aborted) return EXIT.ok;
    if (follow) throw new CliError("the event stream ended (the service is shutting down); resume with --from <last position>", EXIT.failure);
  },
};

export const events: Group = {
  name: "events",
  summary: "follow the events of a registry or namespace as they are committed",
  subcommands: [watch],
  default: "watch",
};
