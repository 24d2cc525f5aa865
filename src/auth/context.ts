// What the edges learn about a call and hand to the services: who calls (the auth interceptor
// sets it once it has authenticated), the audit trail of the call, and the client's address (the
// HTTP adapters set it: Connect's interceptors do not see the socket).
import { createContextKey } from "@connectrpc/connect";
import type { AuditTrail } from "../store/audit.js";
import type { Caller } from "./authenticator.js";

export const clientAddressKey = createContextKey<string>("", { description: "client address" });

export const callerKey = createContextKey<Caller | undefined>(undefined, { description: "caller" });

export const auditTrailKey = createContextKey<AuditTrail | undefined>(undefined, { description: "audit trail" });

/** The client's address of a Node request: the socket's peer (no proxy header is trusted). */
export function socketAddress(req: { socket?: { remoteAddress?: string } | null }): string {
  const address = req.socket?.remoteAddress ?? "";
  // IPv4 clients of a dual-stack listener show as ::ffff:a.b.c.d.
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}
