// Request ids: the caller's x-request-id is kept when it is a sane token (it is echoed in
// responses and written to the log), otherwise one is made. Every way in uses this one rule.
import { randomUUID } from "node:crypto";

export const REQUEST_ID_HEADER = "x-request-id";

export function isRequestId(value: unknown): value is string {
  return typeof value === "string" && /^[A-Za-z0-9._:-]{1,128}$/.test(value);
}

export function pickRequestId(candidate: string | string[] | null | undefined): string {
  return isRequestId(candidate) ? candidate : randomUUID();
}
