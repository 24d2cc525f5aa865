import type { ServiceImpl } from "@connectrpc/connect";
import { ImmutabilityRuleSchema, ImmutabilityRuleService } from "../../gen/artifact/v1/immutability_rule_pb.js";
import { invalidArgument } from "../domain/errors.js";
import { checkRulePattern } from "../domain/immutability.js";
import { checkDescription } from "../domain/names.js";
import type { ImmutabilityRulePatch } from "../store/immutability-rules.js";
import type { Store } from "../store/index.js";
import { auditTrail, visibilityOf } from "./caller.js";
import { immutabilityRuleToProto, listRequest } from "./convert.js";
import { policyScopeFilter, policyScopeFromProto } from "./policy-scope.js";
import { fieldsToUpdate } from "./update-mask.js";
import { requireId, requireMessage, validate } from "./validate.js";

export function immutabilityRuleService(store: Store): ServiceImpl<typeof ImmutabilityRuleService> {
  return {
    async createImmutabilityRule(req, ctx) {
      const r = requireMessage("immutability_rule", req.immutabilityRule);
      const view = await store.immutabilityRules.create(
        {
          scope: policyScopeFromProto("immutability_rule", r.scope),
          tagPattern: validate("immutability_rule.tag_pattern", r.tagPattern, checkRulePattern),
          description: validate("immutability_rule.description", r.description, checkDescription),
        },
        auditTrail(ctx),
      );
      return immutabilityRuleToProto(view);
    },

    async getImmutabilityRule(req) {
      return immutabilityRuleToProto(await store.immutabilityRules.get(requireId("id", req.id)));
    },

    async updateImmutabilityRule(req, ctx) {
      const r = requireMessage("immutability_rule", req.immutabilityRule);
      const id = requireId("immutability_rule.id", r.id);
      const fields = fieldsToUpdate(ImmutabilityRuleSchema, req.updateMask, () => false);
      const patch: ImmutabilityRulePatch = {};
      if (fields.has("tag_pattern")) patch.tagPattern = validate("immutability_rule.tag_pattern", r.tagPattern, checkRulePattern);
      if (fields.has("description")) patch.description = validate("immutability_rule.description", r.description, checkDescription);
      return immutabilityRuleToProto(await store.immutabilityRules.update(id, patch, r.etag, auditTrail(ctx)));
    },

    async deleteImmutabilityRule(req, ctx) {
      await store.immutabilityRules.delete(requireId("id", req.id), { etag: req.etag }, auditTrail(ctx));
      return {};
    },

    async listImmutabilityRules(req, ctx) {
      const scope = policyScopeFilter(req);
      if (req.inherited && !scope) throw invalidArgument("inherited: needs namespace_id or repository_id");
      const page = await store.immutabilityRules.list(listRequest({ ...req, query: "" }), { scope, inherited: req.inherited }, visibilityOf(ctx));
      return { immutabilityRules: page.items.map(immutabilityRuleToProto), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },
  };
}
