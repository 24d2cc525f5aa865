// What a service implementation knows of its caller (set by the auth interceptor): the caller,
// the audit trail its writes carry, and what it may see in lists.
import type { HandlerContext } from "@connectrpc/connect";
import { unauthenticated, type Caller } from "../auth/authenticator.js";
import { auditTrailKey, callerKey } from "../auth/context.js";
import { readableScope } from "../auth/policy.js";
import type { AuditTrail } from "../store/audit.js";
import type { Visibility } from "../store/listing.js";

/** The authenticated caller; a call that reached a service without one is refused (fail closed). */
export function callerOf(ctx: HandlerContext): Caller {
  const caller = ctx.values.get(callerKey);
  if (!caller) throw unauthenticated("no caller: the call did not pass the auth interceptor");
  return caller;
}

export function auditTrail(ctx: HandlerContext): AuditTrail | undefined {
  return ctx.values.get(auditTrailKey);
}

/** What a list shows this caller (undefined: everything), beyond what is public. */
export function visibilityOf(ctx: HandlerContext): Visibility | undefined {
  return readableScope(callerOf(ctx).principal);
}
