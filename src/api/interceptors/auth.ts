// Identity and permissions for every call on every protocol (Connect, gRPC, gRPC-Web, and REST,
// which runs the same interceptors): authenticate, look up the method's rule (src/auth/rules.ts),
// find the resource, ask the policy. A method without a rule is refused (fail closed).
// Without a valid credential: UNAUTHENTICATED; with one that lacks the role: PERMISSION_DENIED
// naming the missing permission. Refused writes are recorded in the audit log.
import { Code, ConnectError, type Interceptor, type StreamRequest, type UnaryRequest } from "@connectrpc/connect";
import type { Logger } from "pino";
import { type Authenticator, type Caller, type RequestInfo, trailOf, unauthenticated } from "../../auth/authenticator.js";
import { auditTrailKey, callerKey, clientAddressKey } from "../../auth/context.js";
import { clientCertificateKey } from "../../client-certificate.js";
import type { Locator } from "../../auth/locate.js";
import { decide, type Resource } from "../../auth/policy.js";
import type { Rule, RuleContext } from "../../auth/rules.js";
import { DomainError, ImmutableTagRefused } from "../../domain/errors.js";
import type { AccessStore } from "../../store/access.js";
import type { AuditStore } from "../../store/audit.js";
import { requestIdKey } from "./call.js";

export interface AuthInterceptorDeps {
  authenticator: Authenticator;
  rules: ReadonlyMap<string, Rule>;
  locate: Locator;
  access: AccessStore;
  audit: AuditStore;
  log: Logger;
}

// What a global role alone can decide: the action on a resource nobody else could be allowed.
const NOWHERE: Resource = { type: "missing", noun: "resource", id: "" };

export function authInterceptor(deps: AuthInterceptorDeps): Interceptor {
  return (next) => async (req) => {
    const procedure = `/${req.service.typeName}/${req.method.name}`;
    const rule = deps.rules.get(procedure);
    if (!rule) throw new DomainError("permission-denied", `${procedure} has no access rule; refused`);
    if (rule.kind === "open") return next(req);
    const info: RequestInfo = {
      requestId: req.contextValues.get(requestIdKey),
      clientAddress: req.contextValues.get(clientAddressKey),
      certificate: req.contextValues.get(clientCertificateKey),
    };
    const caller = await deps.authenticator.fromHeader(req.header.get("authorization") ?? undefined, info, { basic: false });
    req.contextValues.set(callerKey, caller);
    req.contextValues.set(auditTrailKey, trailOf(caller, info));
    // A list has nothing to judge up front, but a stream without its request message is still
    // INVALID_ARGUMENT, as everywhere (connect-es would answer UNIMPLEMENTED).
    if (rule.kind === "list" || rule.kind === "lookup") return next(req.stream ? (await firstMessage(req))[1] : req);

    const [input, request] = await firstMessage(req);
    const principal = caller.principal;
    // A global role that allows the action decides without looking anything up.
    if (typeof rule.action !== "string" || !decide(principal, rule.action, NOWHERE).allowed) {
      const ctx: RuleContext = { caller, locate: deps.locate, access: deps.access };
      const resource = await rule.resource(input as never, ctx);
      const action = typeof rule.action === "string" ? rule.action : rule.action(input as never, resource);
      const decision = decide(principal, action, resource);
      if (!decision.allowed) {
        if (rule.event) await recordDenial(deps, caller, info, rule.event.action, describe(resource), decision.needs);
        throw principal.account || principal.bindings.length > 0
          ? new DomainError("permission-denied", `permission denied: ${decision.needs}`)
          : unauthenticated(`sign in first (an API token as \`Authorization: Bearer <token>\`): this call ${decision.needs}`);
      }
    }
    const res = await next(request).catch(async (err: unknown) => {
      // A write an immutability rule refused: the store rolled it back; its refusal is recorded
      // here, under the write's own action, naming the rule.
      if (err instanceof ImmutableTagRefused) await recordDenial(deps, caller, info, err.attempt, err.resource, err.message);
      throw err;
    });
    if (rule.event?.record === "after") {
      // Streams (a sync) are recorded when they start: their end is the client's to see.
      await deps.audit
        .record(trailOf(caller, info), { action: rule.event.action, resourceType: "service", resourceName: procedure })
        .catch((err: unknown) => deps.log.warn({ err, requestId: info.requestId }, "could not record an audit event"));
    }
    return res;
  };
}

/** The request's (first) message, and the request to pass on (a stream's message is read once). */
async function firstMessage(req: UnaryRequest | StreamRequest): Promise<[unknown, UnaryRequest | StreamRequest]> {
  if (!req.stream) return [req.message, req];
  const messages = req.message[Symbol.asyncIterator]();
  const first = await messages.next();
  // Every stream we serve is server-streaming: one request message. A stream that ends without
  // it (a gRPC-Web trailer frame alone) names nothing to judge; it is the client's mistake.
  if (first.done) throw new ConnectError("protocol error: missing input message", Code.InvalidArgument);
  const rest = {
    [Symbol.asyncIterator]: () => messages,
  };
  async function* replay() {
    yield first.value;
    yield* rest;
  }
  return [first.value, { ...req, message: replay() }];
}

function describe(resource: Resource): { type: string; id: string; name: string } {
  switch (resource.type) {
    case "registry":
      return { type: "registry", id: resource.registry.id, name: resource.registry.name };
    case "namespace":
      return { type: "namespace", id: resource.namespace.id, name: `${resource.registry.name}/${resource.namespace.name}` };
    case "repository":
      return { type: "repository", id: "", name: `${resource.registry.name}/${resource.namespaceName}/${resource.repository}` };
    case "account":
      return { type: "account", id: resource.accountId, name: "" };
    case "missing":
      return { type: resource.noun.replace(/ /g, "_"), id: resource.id, name: "" };
    case "service":
      return { type: "service", id: "", name: "" };
  }
}

async function recordDenial(
  deps: AuthInterceptorDeps,
  caller: Caller,
  info: RequestInfo,
  action: string,
  resource: { type: string; id: string; name: string },
  needs: string,
): Promise<void> {
  await deps.audit
    .record(trailOf(caller, info), {
      action,
      resourceType: resource.type,
      resourceId: resource.id,
      resourceName: resource.name,
      outcome: "denied",
      detail: needs,
    })
    .catch((err: unknown) => deps.log.warn({ err, requestId: info.requestId }, "could not record a refusal in the audit log"));
}
