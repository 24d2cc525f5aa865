import type { ServiceImpl } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { TokenService, type CreateTokenRequest } from "../../gen/artifact/v1/token_pb.js";
import { decide } from "../auth/policy.js";
import { hashTokenSecret, newTokenSecret } from "../auth/tokens.js";
import { invalidArgument } from "../domain/errors.js";
import { checkTokenName } from "../domain/names.js";
import type { Store } from "../store/index.js";
import { auditTrail, callerOf } from "./caller.js";
import { listRequest, tokenToProto } from "./convert.js";
import { optionalId, requireId, validate } from "./validate.js";

const MAX_TTL_MS = 100 * 365 * 24 * 3_600_000;

export function tokenService(store: Store, identityChanged: () => void = () => {}): ServiceImpl<typeof TokenService> {
  return {
    async createToken(req, ctx) {
      const caller = callerOf(ctx);
      const accountId = optionalId("account_id", req.accountId) ?? caller.principal.account?.id;
      if (!accountId) throw invalidArgument("account_id: is required when the caller has no account of its own");
      const name = validate("name", req.name, checkTokenName);
      const expireTime = expiry(req.expiration);
      const secret = newTokenSecret();
      const view = await store.tokens.create({ accountId, name, secretHash: hashTokenSecret(secret), expireTime }, auditTrail(ctx));
      return { token: tokenToProto(view, view.accountName), secret };
    },

    async getToken(req) {
      const view = await store.tokens.get(requireId("id", req.id));
      return tokenToProto(view, view.accountName);
    },

    async listTokens(req, ctx) {
      const caller = callerOf(ctx);
      // Without an account filter: one's own tokens, or everyone's for a global admin.
      const everyone = decide(caller.principal, "administer", { type: "service" }).allowed;
      const accountId = optionalId("account_id", req.accountId) ?? (everyone ? undefined : caller.principal.account?.id);
      const page = await store.tokens.list(listRequest(req), { accountId });
      const names = await store.accounts.names(page.items.map((t) => t.accountId));
      return { tokens: page.items.map((t) => tokenToProto(t, names.get(t.accountId) ?? "")), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },

    async revokeToken(req, ctx) {
      const view = await store.tokens.revoke(requireId("id", req.id), auditTrail(ctx));
      identityChanged();
      return tokenToProto(view, view.accountName);
    },
  };
}

/** When the token stops working: a future time, a positive TTL, or never. */
function expiry(expiration: CreateTokenRequest["expiration"]): Date | null {
  if (expiration.case === undefined) return null;
  if (expiration.case === "expireTime") {
    const at = timestampDate(expiration.value);
    if (!(at.getTime() > Date.now()) || at.getUTCFullYear() > 9999) throw invalidArgument("expire_time: must be in the future (and before year 10000)");
    return at;
  }
  const ms = Number(expiration.value.seconds) * 1000 + Math.floor(expiration.value.nanos / 1e6);
  if (!(ms > 0) || ms > MAX_TTL_MS) throw invalidArgument("ttl: must be positive and at most 100 years");
  return new Date(Date.now() + ms);
}
