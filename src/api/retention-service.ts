// RetentionService: policies (admins of the scope manage them) and runs (RunRetention, one page
// at a time). The rule tree's message is turned into the domain's KeepRule here, checked with the
// field path of every part (src/domain/retention.ts checkKeepRule).
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate, type Duration } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  KeepRuleSchema,
  RetentionDeletionSchema,
  RetentionOutcome,
  RetentionPolicySchema,
  RetentionReason,
  RetentionService,
  RetentionTarget,
  type KeepRule as KeepRuleMessage,
  type RetentionDeletion as RetentionDeletionMessage,
  type RetentionPolicy,
  type RunRetentionResponseSchema,
} from "../../gen/artifact/v1/retention_pb.js";
import { invalidArgument } from "../domain/errors.js";
import type { PolicyScope } from "../domain/policy-scope.js";
import { checkDescription } from "../domain/names.js";
import {
  checkDuration,
  checkKeepRule,
  KEEP_MAX_DEPTH,
  KEEP_MAX_RULES,
  UNTAGGED_GRACE_MAX_MS,
  UNTAGGED_GRACE_MIN_MS,
  type KeepRule,
} from "../domain/retention.js";
import type { Store } from "../store/index.js";
import type { RetentionPolicyPatch, RetentionPolicyView } from "../store/retention-policies.js";
import { retentionPageSize, type RetentionDeletion, type RetentionStats } from "../store/retention.js";
import { auditTrail, visibilityOf } from "./caller.js";
import { listRequest } from "./convert.js";
import { policyScopeFilter, policyScopeFromProto, policyScopeToProto } from "./policy-scope.js";
import { fieldsToUpdate } from "./update-mask.js";
import { requireId, requireMessage, validate } from "./validate.js";

const POLICY = "retention_policy";

/** A Duration as whole milliseconds; `path` names it in errors. */
function durationMs(path: string, d: Duration | undefined): number {
  if (!d) throw invalidArgument(`${path}: required`);
  const ms = Number(d.seconds) * 1000 + Math.trunc(d.nanos / 1_000_000);
  if (d.seconds < 0n || d.nanos < 0) throw invalidArgument(`${path}: must be positive`);
  return ms;
}

/**
 * The message as the domain's tree. Shape limits are enforced while walking (a tree deeper or
 * larger than the bounds is refused before it is walked any further), values by checkKeepRule.
 */
export function keepRuleFromProto(path: string, message: KeepRuleMessage): KeepRule {
  let count = 0;
  const walk = (m: KeepRuleMessage, at: string, depth: number): KeepRule => {
    if (++count > KEEP_MAX_RULES) throw invalidArgument(`${at}: a keep rule has at most ${KEEP_MAX_RULES} rules in all`);
    if (depth > KEEP_MAX_DEPTH) throw invalidArgument(`${at}: a keep rule nests at most ${KEEP_MAX_DEPTH} levels deep`);
    const k = m.kind;
    switch (k.case) {
      case "allOf":
        return { allOf: k.value.rules.map((r, i) => walk(r, `${at}.all_of.rules[${i}]`, depth + 1)) };
      case "anyOf":
        return { anyOf: k.value.rules.map((r, i) => walk(r, `${at}.any_of.rules[${i}]`, depth + 1)) };
      case "not":
        return { not: walk(k.value, `${at}.not`, depth + 1) };
      case "matching":
        return { matching: { tagPattern: k.value.tagPattern } };
      case "mostRecent":
        return { mostRecent: { count: k.value.count, ...(k.value.tagPattern ? { tagPattern: k.value.tagPattern } : {}) } };
      case "pushedWithin":
        return { pushedWithin: { ms: durationMs(`${at}.pushed_within.duration`, k.value.duration) } };
      case "pulledWithin":
        return { pulledWithin: { ms: durationMs(`${at}.pulled_within.duration`, k.value.duration) } };
      default:
        throw invalidArgument(`${at}: set one of all_of, any_of, not, matching, most_recent, pushed_within and pulled_within`);
    }
  };
  const rule = walk(message, path, 1);
  checkKeepRule(path, rule);
  return rule;
}

const msDuration = (ms: number): MessageInitShape<typeof RetentionPolicySchema>["untaggedGrace"] => ({
  seconds: BigInt(Math.floor(ms / 1000)),
  nanos: (ms % 1000) * 1_000_000,
});

export function keepRuleToProto(rule: KeepRule): MessageInitShape<typeof KeepRuleSchema> {
  if ("allOf" in rule) return { kind: { case: "allOf", value: { rules: rule.allOf.map(keepRuleToProto) } } };
  if ("anyOf" in rule) return { kind: { case: "anyOf", value: { rules: rule.anyOf.map(keepRuleToProto) } } };
  if ("not" in rule) return { kind: { case: "not", value: keepRuleToProto(rule.not) } };
  if ("matching" in rule) return { kind: { case: "matching", value: { tagPattern: rule.matching.tagPattern } } };
  if ("mostRecent" in rule) return { kind: { case: "mostRecent", value: { count: rule.mostRecent.count, tagPattern: rule.mostRecent.tagPattern ?? "" } } };
  if ("pushedWithin" in rule) return { kind: { case: "pushedWithin", value: { duration: msDuration(rule.pushedWithin.ms) } } };
  return { kind: { case: "pulledWithin", value: { duration: msDuration(rule.pulledWithin.ms) } } };
}

export function retentionPolicyToProto(view: RetentionPolicyView): RetentionPolicy {
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

export function retentionDeletionToProto(d: RetentionDeletion): RetentionDeletionMessage {
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
