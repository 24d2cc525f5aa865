// RetentionService: policies (admins of the scope manage them) and runs (RunRetention, one page
// at a time). The rule tree's message is turned into the domain's KeepRule here, checked with the
// field path of every part (src/domain/retention.ts checkKeepRule).
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  RetentionDeletionSchema,
  RetentionOutcome,
  RetentionPolicySchema,
  RetentionReason,
  RetentionService,
  RetentionTarget,
  type RetentionDeletion as RetentionDeletionMessage,
  type RetentionPolicy,
  type RunRetentionResponseSchema,
} from "../../gen/artifact/v1/retention_pb.js";
import { invalidArgument } from "../domain/errors.js";
import type { PolicyScope } from "../domain/policy-scope.js";
import { checkDescription } from "../domain/names.js";
import { checkDuration, UNTAGGED_GRACE_MAX_MS, UNTAGGED_GRACE_MIN_MS } from "../domain/retention.js";
import { keepRuleToProto, msDuration } from "../client/keep-rule.js";
import { durationMs, keepRuleFromProto } from "./keep-rule.js";
import type { Store } from "../store/index.js";
import type { RetentionPolicyPatch, RetentionPolicyView } from "../store/retention-policies.js";
import { retentionPageSize, type RetentionDeletion, type RetentionStats } from "../store/retention.js";
import { auditTrail, visibilityOf } from "./caller.js";
import { listRequest } from "./convert.js";
import { policyScopeFilter, policyScopeFromProto, policyScopeToProto } from "./policy-scope.js";
import { fieldsToUpdate } from "./update-mask.js";
import { requireId, requireMessage, validate } from "./validate.js";

const POLICY = "retention_policy";

function retentionPolicyToProto(view: RetentionPolicyView): RetentionPolicy {
  return create(RetentionPolicySchema, {
    id: view.id,
    etag: String(view.version),
    createTime: timestampFromDate(view.createTime),
    updateTime: timestampFromDate(view.updateTime),
    scope: policyScopeToProto(view),
    keep: view.keep ? keepRuleToProto(view.keep) : undefined,
    untaggedGrace: view.untaggedGraceMs === null ? undefined : msDuration(view.untaggedGraceMs),
    deleteImmutable: view.deleteImmutable,
    disabled: view.disabled,
    description: view.description,
    scopeName: view.scopeName,
  });
}

const TARGETS = { tag: RetentionTarget.TAG, manifest: RetentionTarget.MANIFEST } as const;
const REASONS = { "not-kept": RetentionReason.NOT_KEPT, untagged: RetentionReason.UNTAGGED, referrer: RetentionReason.REFERRER } as const;
const OUTCOMES = { planned: RetentionOutcome.PLANNED, deleted: RetentionOutcome.DELETED, skipped: RetentionOutcome.SKIPPED } as const;

function retentionDeletionToProto(d: RetentionDeletion): RetentionDeletionMessage {
  return create(RetentionDeletionSchema, {
    target: TARGETS[d.target],
    repositoryId: d.repositoryId,
    repositoryName: d.repositoryName,
    tag: d.tag?.name ?? "",
    digest: d.digest,
    reason: REASONS[d.reason],
    rule: d.rule,
    policyId: d.policyId,
    policyScope: d.policyScope,
    immutabilityRuleId: d.immutabilityRuleId ?? "",
    pushTime: timestampFromDate(d.pushTime),
    lastPullTime: d.lastPullTime ? timestampFromDate(d.lastPullTime) : undefined,
    sizeBytes: BigInt(d.sizeBytes),
    outcome: OUTCOMES[d.outcome],
  });
}

const statsToProto = (s: RetentionStats) => ({
  repositories: BigInt(s.repositories),
  tagsExamined: BigInt(s.tagsExamined),
  tagsDeleted: BigInt(s.tagsDeleted),
  manifestsDeleted: BigInt(s.manifestsDeleted),
  skipped: BigInt(s.skipped),
  immutableKept: BigInt(s.immutableKept),
  repositoriesDisabled: BigInt(s.repositoriesDisabled),
});

/** The policy's mutable fields from the message, checked; only those `fields` names. */
function patchOf(p: RetentionPolicy, fields: Set<string>): RetentionPolicyPatch {
  const patch: RetentionPolicyPatch = {};
  if (fields.has("keep")) patch.keep = p.keep ? keepRuleFromProto(`${POLICY}.keep`, p.keep) : null;
  if (fields.has("untagged_grace")) {
    const path = `${POLICY}.untagged_grace`;
    patch.untaggedGraceMs = p.untaggedGrace ? durationMs(path, p.untaggedGrace) : null;
    if (patch.untaggedGraceMs !== null) checkDuration(path, patch.untaggedGraceMs, UNTAGGED_GRACE_MIN_MS, UNTAGGED_GRACE_MAX_MS);
  }
  if (fields.has("delete_immutable")) patch.deleteImmutable = p.deleteImmutable;
  if (fields.has("disabled")) patch.disabled = p.disabled;
  if (fields.has("description")) patch.description = validate(`${POLICY}.description`, p.description, checkDescription);
  return patch;
}

/** RunRetention's scope: its fields are the request's own (`registry_id`, …). */
function runScope(scope: { case: "registryId" | "namespaceId" | "repositoryId"; value: string }): PolicyScope {
  const kind = ({ registryId: "registry", namespaceId: "namespace", repositoryId: "repository" } as const)[scope.case];
  return { kind, id: requireId(`${kind}_id`, scope.value) };
}

const ALL_FIELDS = new Set(["keep", "untagged_grace", "delete_immutable", "disabled", "description"]);

export function retentionService(store: Store): ServiceImpl<typeof RetentionService> {
  return {
    async createRetentionPolicy(req, ctx) {
      const p = requireMessage(POLICY, req.retentionPolicy);
      const scope = policyScopeFromProto(POLICY, p.scope);
      const patch = patchOf(p, ALL_FIELDS) as Required<RetentionPolicyPatch>;
      return retentionPolicyToProto(await store.retentionPolicies.create({ ...patch, scope }, auditTrail(ctx)));
    },

    async getRetentionPolicy(req) {
      return retentionPolicyToProto(await store.retentionPolicies.get(requireId("id", req.id)));
    },

    async updateRetentionPolicy(req, ctx) {
      const p = requireMessage(POLICY, req.retentionPolicy);
      const id = requireId(`${POLICY}.id`, p.id);
      const fields = fieldsToUpdate(RetentionPolicySchema, req.updateMask, () => false);
      return retentionPolicyToProto(await store.retentionPolicies.update(id, patchOf(p, fields), p.etag, auditTrail(ctx)));
    },

    async deleteRetentionPolicy(req, ctx) {
      await store.retentionPolicies.delete(requireId("id", req.id), { etag: req.etag }, auditTrail(ctx));
      return {};
    },

    async listRetentionPolicies(req, ctx) {
      const scope = policyScopeFilter(req);
      if (req.inherited && !scope) throw invalidArgument("inherited: needs namespace_id or repository_id");
      const page = await store.retentionPolicies.list(listRequest({ ...req, query: "" }), { scope, inherited: req.inherited }, visibilityOf(ctx));
      return { retentionPolicies: page.items.map(retentionPolicyToProto), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },

    async runRetention(req, ctx): Promise<MessageInitShape<typeof RunRetentionResponseSchema>> {
      const scope = req.scope.case === undefined ? undefined : runScope(req.scope);
      const pageSize = retentionPageSize(req.pageSize);
      const page = await store.retention.runPage({ scope, dryRun: req.dryRun, pageSize, pageToken: req.pageToken || undefined, trail: auditTrail(ctx) });
      return {
        dryRun: page.dryRun,
        deletions: page.deletions.map(retentionDeletionToProto),
        nextPageToken: page.nextPageToken,
        stats: statsToProto(page.stats),
      };
    },
  };
}
