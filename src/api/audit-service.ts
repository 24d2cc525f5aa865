import type { ServiceImpl } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AuditService } from "../../gen/artifact/v1/audit_pb.js";
import { invalidArgument } from "../domain/errors.js";
import { checkUuid } from "../domain/names.js";
import { hasControlCharacter } from "../domain/text.js";
import type { AuditFilter } from "../store/audit.js";
import type { Store } from "../store/index.js";
import { auditEventToProto } from "./convert.js";

const MAX_FILTER = 1024;

function text(field: string, value: string): string | undefined {
  if (value === "") return undefined;
  if (value.length > MAX_FILTER || hasControlCharacter(value)) throw invalidArgument(`${field}: at most ${MAX_FILTER} printable characters`);
  return value;
}

function isoTime(field: string, date: Date): string {
  if (Number.isNaN(date.getTime()) || date.getUTCFullYear() < 1 || date.getUTCFullYear() > 9999)
    throw invalidArgument(`${field}: not a time from year 1 to 9999`);
  return date.toISOString();
}

export function auditService(store: Store): ServiceImpl<typeof AuditService> {
  return {
    async listAuditEvents(req) {
      const filter: AuditFilter = { action: text("action", req.action) };
      // An id or a name, whichever it looks like.
      const actor = text("actor", req.actor);
      if (actor !== undefined) {
        if (checkUuid(actor) === undefined) filter.actorId = actor.toLowerCase();
        else filter.actorName = actor;
      }
      const resource = text("resource", req.resource);
      if (resource !== undefined) {
        if (checkUuid(resource) === undefined) filter.resourceId = resource.toLowerCase();
        else filter.resourceName = resource;
      }
      if (req.startTime) filter.start = isoTime("start_time", timestampDate(req.startTime));
      if (req.endTime) filter.end = isoTime("end_time", timestampDate(req.endTime));
      if (filter.start && filter.end && filter.start > filter.end) throw invalidArgument("start_time: must not be after end_time");
      const page = await store.audit.list({ pageSize: req.pageSize, pageToken: req.pageToken, orderBy: req.orderBy, query: "" }, filter);
      return { auditEvents: page.items.map(auditEventToProto), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },
  };
}
