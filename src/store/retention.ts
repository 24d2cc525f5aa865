// Retention runs: the repositories of a scope, each under its nearest policy, one page at a time.
// For each repository the store reads what the decision needs (tags with their pull times; with an
// untagged grace, every manifest with its children and subject; the immutability rules), and
// planRepository() (src/domain/retention.ts) decides. A dry run returns that plan; a real run
// carries out the same plan, in batches, each in a transaction that re-checks every deletion
// under the row locks the DELETE takes:
// - a tag is deleted only at the version planned (a tag moved or re-pushed since has another),
//   and, unless the policy has delete_immutable, only if no immutability rule protects it now;
// - a manifest only with the push time planned (a push of it since moves it), when no tag points
//   at it, no other manifest of the repository lists it and its subject (if any) is gone: the
//   condition garbage collection deletes by. Indexes and subjects go first, in rounds.
// What a re-check refuses is reported SKIPPED. Every deletion writes its audit event in its
// transaction, naming the policy and the rule. Deleting rows is all a run does: the blobs they
// referenced are freed by the next garbage collection.
//
// Memory is one repository's rows and one page of deletions; time is a few indexed queries per
// repository plus one statement per batch (bench/retention.ts).
import { and, asc, eq, gt, sql, type SQL } from "drizzle-orm";
import type { Database, DatabaseHandle } from "../db/database.js";
import {
  auditEvents,
  manifestReferences,
  manifests,
  namespaces,
  registries,
  repositories,
  retentionPolicies as policies,
  tagPulls,
  tags,
} from "../db/schema.js";
import type { KeepRule } from "../client/keep-rule.js";
import { aborted, invalidArgument, isDomainError } from "../domain/errors.js";
import { protectingRule } from "../domain/immutability.js";
import type { PolicyScope, PolicyScopeKind } from "../domain/policy-scope.js";
import { planRepository, policyScopeText, type PlannedDeletion, type RepoManifest, type RepoTag, type RetentionPolicyRef } from "../domain/retention.js";
import type { AuditTrail } from "./audit.js";
import { recordRetentionDeletions } from "./events.js";
import type { HotCache } from "./hot-cache.js";
import { rulesForRepository } from "./immutability.js";
import { resolvePolicyScope } from "./policy-scope.js";
import type { PageTokens } from "./page-token.js";
import { guarded } from "./pg-errors.js";

const RETENTION_DEFAULT_PAGE = 500;
const RETENTION_MAX_PAGE = 5000;
/** A page ends after deciding this many repositories, even with few deletions (a bound on its time). */
const REPOSITORIES_PER_PAGE = 1000;
const REPOSITORY_QUERY = 100;
const BATCH = 500;
/** The advisory lock of real runs (any constant every replica shares): "ARRT". */
const RETENTION_LOCK_ID = 0x41525254;
/** Who the audit log names for the scheduled runs. */
const RETENTION_ACTOR: AuditTrail = { actorId: null, actorName: "retention", requestId: "", clientAddress: "" };

export type RetentionOutcome = "planned" | "deleted" | "skipped";

export interface RetentionDeletion extends PlannedDeletion {
  repositoryId: string;
  repositoryName: string;
  policyId: string;
  /** `namespace local/team`. */
  policyScope: string;
  outcome: RetentionOutcome;
}

export interface RetentionStats {
  repositories: number;
  tagsExamined: number;
  tagsDeleted: number;
  manifestsDeleted: number;
  skipped: number;
  immutableKept: number;
  repositoriesDisabled: number;
}

export interface RetentionPage {
  dryRun: boolean;
  deletions: RetentionDeletion[];
  /** Empty on the last page. */
  nextPageToken: string;
  stats: RetentionStats;
}

export interface RetentionRunOptions {
  /** The repositories inside it; absent: every repository that has a policy. */
  scope?: PolicyScope;
  dryRun: boolean;
  /** Deletions per page (at most RETENTION_MAX_PAGE). */
  pageSize: number;
  pageToken?: string;
  /** Who ran it (the audit log's actor); absent: the schedule (RETENTION_ACTOR). */
  trail?: AuditTrail;
}

/** Told of every whole run the schedule makes (the server logs it, metrics count it). */
export interface RetentionObserver {
  ran(outcome: { stats: RetentionStats } | { error: unknown }, seconds: number): void;
}

const emptyStats = (): RetentionStats => ({
  repositories: 0,
  tagsExamined: 0,
  tagsDeleted: 0,
  manifestsDeleted: 0,
  skipped: 0,
  immutableKept: 0,
  repositoriesDisabled: 0,
});

function addStats(into: RetentionStats, from: RetentionStats): void {
  for (const key of Object.keys(into) as (keyof RetentionStats)[]) into[key] += from[key];
}

/** Another real run holds the lock (here or on another replica). */
const running = () => aborted("a retention run is already running (in this process or another replica); try again when it has ended");

export function isRetentionRunning(err: unknown): boolean {
  return isDomainError(err, "aborted") && err.message.startsWith("a retention run is already running");
}

/** Where a page resumes: at a repository (and an offset into its plan), or after one. */
interface Resume {
  repositoryId: string;
  /** ≥ 0: resume at this repository, this far into its plan (a dry run; 0 for a real one); -1: after it. */
  offset: number;
}

/** A repository and the policy that applies to it. */
interface Target {
  repositoryId: string;
  repositoryName: string;
  names: [string, string, string];
  policy: RetentionPolicyRef;
  nowMs: number;
}

export class RetentionRunner {
  private readonly observers: RetentionObserver[] = [];

  constructor(
    private readonly db: Database,
    private readonly tokens: PageTokens,
    private readonly cache: HotCache,
    /** Absent: real runs are not coordinated with other processes (one process, tests). */
    private readonly exclusively?: DatabaseHandle["exclusively"],
  ) {}

  observe(observer: RetentionObserver): void {
    this.observers.push(observer);
  }

  /** One page of a run (RunRetention). A real page holds the run lock while it runs. */
  async runPage(options: RetentionRunOptions): Promise<RetentionPage> {
    const fingerprint = JSON.stringify(["retention", options.dryRun, options.scope?.kind ?? "", options.scope?.id ?? ""]);
    let resume: Resume | undefined;
    if (options.pageToken) {
      const cursor = this.tokens.decode(fingerprint, options.pageToken);
      resume = { repositoryId: cursor.id, offset: Number(cursor.value) };
    }
    // An unknown scope is NOT_FOUND, not an empty run.
    if (options.scope) await guarded(() => resolvePolicyScope(this.db, options.scope!));
    const page = () => this.page(options, resume, fingerprint);
    if (options.dryRun || !this.exclusively) return guarded(page);
    const outcome = await this.exclusively(RETENTION_LOCK_ID, () => guarded(page));
    if (!outcome.ran) throw running();
    return outcome.value;
  }

  /**
   * A whole run, page after page, keeping only the counts (the schedule's). A real run holds the
   * lock throughout; another one running → ABORTED (isRetentionRunning).
   */
  async runAll(options: Omit<RetentionRunOptions, "pageSize" | "pageToken">): Promise<RetentionStats> {
    const started = performance.now();
    const tell = (outcome: { stats: RetentionStats } | { error: unknown }) => {
      for (const o of this.observers) o.ran(outcome, (performance.now() - started) / 1000);
    };
    const all = async () => {
      const stats = emptyStats();
      let token = "";
      do {
        const fingerprint = JSON.stringify(["retention", options.dryRun, options.scope?.kind ?? "", options.scope?.id ?? ""]);
        const cursor = token ? this.tokens.decode(fingerprint, token) : undefined;
        const page = await guarded(() =>
          this.page({ ...options, pageSize: RETENTION_MAX_PAGE }, cursor && { repositoryId: cursor.id, offset: Number(cursor.value) }, fingerprint),
        );
        addStats(stats, page.stats);
        token = page.nextPageToken;
      } while (token);
      return stats;
    };
    try {
      let stats: RetentionStats;
      if (options.dryRun || !this.exclusively) stats = await all();
      else {
        const outcome = await this.exclusively(RETENTION_LOCK_ID, all);
        if (!outcome.ran) throw running();
        stats = outcome.value;
      }
      tell({ stats });
      return stats;
    } catch (err) {
      tell({ error: err });
      throw err;
    }
  }

  private async page(options: RetentionRunOptions, resume: Resume | undefined, fingerprint: string): Promise<RetentionPage> {
    const pageSize = Math.min(Math.max(1, options.pageSize), RETENTION_MAX_PAGE);
    const stats = emptyStats();
    const deletions: RetentionDeletion[] = [];
    const trail = options.trail ?? RETENTION_ACTOR;
    const next = (r: Resume) => this.tokens.encode(fingerprint, { value: r.offset, id: r.repositoryId, total: 0 });
    let cursor = resume;
    for (;;) {
      const targets = await this.targets(options.scope, cursor);
      for (const target of targets) {
        if (stats.repositories >= REPOSITORIES_PER_PAGE)
          return { dryRun: options.dryRun, deletions, stats, nextPageToken: next({ repositoryId: target.repositoryId, offset: 0 }) };
        const offset = cursor && cursor.offset >= 0 && cursor.repositoryId === target.repositoryId ? cursor.offset : 0;
        const plan = planRepository(target.policy, await this.snapshot(target), new Date(target.nowMs));
        const room = pageSize - deletions.length;
        const rest = plan.deletions.length - offset;
        // Repositories stay whole on a page when they fit; one larger than a page is split.
        if (rest > room && deletions.length > 0) {
          return { dryRun: options.dryRun, deletions, stats, nextPageToken: next({ repositoryId: target.repositoryId, offset }) };
        }
        stats.repositories++;
        stats.tagsExamined += plan.tagsExamined;
        stats.immutableKept += plan.immutableKept;
        const slice = plan.deletions.slice(offset, offset + room);
        const named = (d: PlannedDeletion, outcome: RetentionOutcome): RetentionDeletion => ({
          ...d,
          repositoryId: target.repositoryId,
          repositoryName: target.repositoryName,
          policyId: target.policy.id,
          policyScope: policyScopeText(target.policy),
          outcome,
        });
        let deletedHere = 0;
        if (options.dryRun) {
          for (const d of slice) deletions.push(named(d, "planned"));
          for (const d of slice) stats[d.target === "tag" ? "tagsDeleted" : "manifestsDeleted"]++;
        } else if (target.policy.disabled) {
          stats.repositoriesDisabled++;
        } else if (slice.length > 0) {
          const done = await this.execute(target, slice, trail);
          slice.forEach((d, i) => {
            const outcome = done[i]!;
            deletions.push(named(d, outcome));
            if (outcome === "skipped") stats.skipped++;
            else {
              deletedHere++;
              stats[d.target === "tag" ? "tagsDeleted" : "manifestsDeleted"]++;
            }
          });
        }
        if (rest > room && !(target.policy.disabled && !options.dryRun)) {
          // The rest of this repository's plan on the next page: a dry run goes on from where
          // this page stopped; a real run decides again (what it deleted is gone), unless this
          // page deleted nothing there (all of it skipped): then it moves on, so a run always ends.
          if (options.dryRun) return { dryRun: true, deletions, stats, nextPageToken: next({ repositoryId: target.repositoryId, offset: offset + room }) };
          if (deletedHere > 0) return { dryRun: false, deletions, stats, nextPageToken: next({ repositoryId: target.repositoryId, offset: 0 }) };
        }
        cursor = { repositoryId: target.repositoryId, offset: -1 };
        if (deletions.length >= pageSize) return { dryRun: options.dryRun, deletions, stats, nextPageToken: next(cursor) };
      }
      if (targets.length < REPOSITORY_QUERY) return { dryRun: options.dryRun, deletions, stats, nextPageToken: "" };
    }
  }

  /**
   * The next repositories of the scope that have a policy, in id order from `resume`, each with
   * its nearest policy (the repository's, else its namespace's, else its registry's): one query.
   */
  private async targets(scope: PolicyScope | undefined, resume: Resume | undefined): Promise<Target[]> {
    const nearest = sql`(select p.id from ${policies} p
      where p.registry_id = ${registries.id} and (p.namespace_id is null or p.namespace_id = ${namespaces.id})
        and (p.repository_id is null or p.repository_id = ${repositories.id})
      order by p.repository_id is null, p.namespace_id is null limit 1)`;
    const within: Record<PolicyScopeKind, (id: string) => SQL> = {
      registry: (id) => eq(registries.id, id),
      namespace: (id) => eq(namespaces.id, id),
      repository: (id) => eq(repositories.id, id),
    };
    const rows = await this.db
      .select({
        repositoryId: repositories.id,
        registryName: registries.name,
        namespaceName: namespaces.name,
        repositoryName: repositories.name,
        nowMs: sql<number>`(extract(epoch from now()) * 1000)::float8`.mapWith(Number),
        policy: {
          id: policies.id,
          namespaceId: policies.namespaceId,
          repositoryId: policies.repositoryId,
          keep: policies.keep,
          untaggedGraceMs: policies.untaggedGraceMs,
          deleteImmutable: policies.deleteImmutable,
          disabled: policies.disabled,
        },
      })
      .from(repositories)
      .innerJoin(namespaces, eq(namespaces.id, repositories.namespaceId))
      .innerJoin(registries, eq(registries.id, namespaces.registryId))
      .innerJoin(policies, sql`${policies.id} = ${nearest}`)
      .where(
        and(
          scope ? within[scope.kind](scope.id) : undefined,
          resume === undefined
            ? undefined
            : resume.offset >= 0
              ? sql`${repositories.id} >= ${resume.repositoryId}::uuid`
              : gt(repositories.id, resume.repositoryId),
        ),
      )
      .orderBy(asc(repositories.id))
      .limit(REPOSITORY_QUERY);
    return rows.map((r) => {
      const names: [string, string, string] = [r.registryName, r.namespaceName, r.repositoryName];
      const kind: PolicyScopeKind = r.policy.repositoryId ? "repository" : r.policy.namespaceId ? "namespace" : "registry";
      const depth = { registry: 1, namespace: 2, repository: 3 }[kind];
      return {
        repositoryId: r.repositoryId,
        repositoryName: names.join("/"),
        names,
        nowMs: r.nowMs,
        policy: {
          id: r.policy.id,
          scope: { kind, name: names.slice(0, depth).join("/") },
          keep: (r.policy.keep ?? null) as KeepRule | null,
          untaggedGraceMs: r.policy.untaggedGraceMs,
          deleteImmutable: r.policy.deleteImmutable,
          disabled: r.policy.disabled,
        },
      };
    });
  }

  /** What the decision reads of one repository. */
  private async snapshot(target: Target) {
    const id = target.repositoryId;
    const tagRows = await this.db
      .select({
        id: tags.id,
        name: tags.name,
        version: tags.version,
        digest: tags.digest,
        manifestId: tags.manifestId,
        pushTime: tags.pushTime,
        sizeBytes: tags.sizeBytes,
        tagPull: tagPulls.lastPullTime,
        manifestPull: manifests.lastPullTime,
      })
      .from(tags)
      .leftJoin(tagPulls, eq(tagPulls.tagId, tags.id))
      .leftJoin(manifests, eq(manifests.id, tags.manifestId))
      .where(eq(tags.repositoryId, id));
    const tagList: RepoTag[] = tagRows.map((t) => ({
      id: t.id,
      name: t.name,
      version: t.version,
      digest: t.digest,
      manifestId: t.manifestId,
      pushTime: t.pushTime,
      lastPullTime: later(t.tagPull, t.manifestPull),
      sizeBytes: t.sizeBytes,
    }));
    let manifestList: RepoManifest[] = [];
    if (target.policy.untaggedGraceMs !== null) {
      const [rows, children] = [
        await this.db
          .select({
            id: manifests.id,
            digest: manifests.digest,
            pushTime: manifests.pushTime,
            lastPullTime: manifests.lastPullTime,
            subjectDigest: manifests.subjectDigest,
            sizeBytes: manifests.totalSizeBytes,
          })
          .from(manifests)
          .where(eq(manifests.repositoryId, id)),
        await this.db
          .select({ manifestId: manifestReferences.manifestId, digest: manifestReferences.digest })
          .from(manifestReferences)
          .innerJoin(manifests, eq(manifests.id, manifestReferences.manifestId))
          .where(and(eq(manifests.repositoryId, id), eq(manifestReferences.kind, "manifest"))),
      ];
      const childrenOf = new Map<string, string[]>();
      for (const c of children) {
        const list = childrenOf.get(c.manifestId);
        if (list) list.push(c.digest);
        else childrenOf.set(c.manifestId, [c.digest]);
      }
      manifestList = rows.map((m) => ({ ...m, children: childrenOf.get(m.id) ?? [] }));
    }
    const rules = await rulesForRepository(this.db, id);
    return { id, name: target.repositoryName, tags: tagList, manifests: manifestList, immutabilityRules: rules.rules };
  }

  /** Carries out a slice of a plan; what became of each deletion, in order. */
  private async execute(target: Target, slice: PlannedDeletion[], trail: AuditTrail): Promise<RetentionOutcome[]> {
    const outcome = new Map<PlannedDeletion, RetentionOutcome>();
    const tagItems = slice.filter((d) => d.target === "tag");
    const manifestItems = slice.filter((d) => d.target === "manifest");
    // What a batch deleted goes to the audit log and, last in its transaction, to the events
    // outbox (src/store/events.ts): one row of each per deletion, committed with it or not at all.
    const recorded = async (tx: Database, done: PlannedDeletion[]) => {
      if (done.length === 0) return;
      await tx.insert(auditEvents).values(done.map((d) => auditRow(target, d, trail)));
      await recordRetentionDeletions(
        tx,
        target.repositoryId,
        done.map((d) => ({
          ...(d.tag ? { tag: d.tag.name } : {}),
          digest: d.digest,
          sizeBytes: d.sizeBytes,
          reason: reasonText(target, d),
        })),
        trail === RETENTION_ACTOR ? undefined : { id: trail.actorId, name: trail.actorName },
      );
    };
    try {
      for (let i = 0; i < tagItems.length; i += BATCH) {
        const batch = tagItems.slice(i, i + BATCH);
        const deleted = await this.db.transaction(async (tx) => {
          let allowed = batch;
          if (!target.policy.deleteImmutable) {
            // A rule created since the plan protects its tags from this run too.
            const rules = (await rulesForRepository(tx, target.repositoryId)).rules;
            if (rules.length > 0) allowed = batch.filter((d) => !protectingRule(rules, d.tag!.name));
          }
          if (allowed.length === 0) return new Set<string>();
          const planned = JSON.stringify(allowed.map((d) => ({ id: d.tag!.id, version: d.tag!.version })));
          const rows = await tx
            .delete(tags)
            .where(
              and(
                eq(tags.repositoryId, target.repositoryId),
                sql`(${tags.id}, ${tags.version}) in (select id, version from jsonb_to_recordset(${planned}::jsonb) as v(id uuid, version integer))`,
              ),
            )
            .returning({ id: tags.id });
          const ids = new Set(rows.map((r) => r.id));
          const done = allowed.filter((d) => ids.has(d.tag!.id));
          await recorded(tx, done);
          return ids;
        });
        for (const d of batch) outcome.set(d, deleted.has(d.tag!.id) ? "deleted" : "skipped");
      }
      // Manifests in rounds: an index before its children, a subject before its referrers.
      let remaining = manifestItems;
      while (remaining.length > 0) {
        const deletedThisRound = new Set<string>();
        for (let i = 0; i < remaining.length; i += BATCH) {
          const batch = remaining.slice(i, i + BATCH);
          const ids = await this.db.transaction(async (tx) => {
            const planned = JSON.stringify(batch.map((d) => ({ id: d.manifest!.id, push_time: d.manifest!.pushTime.toISOString() })));
            const rows = await tx
              .delete(manifests)
              .where(
                and(
                  eq(manifests.repositoryId, target.repositoryId),
                  sql`(${manifests.id}, ${manifests.pushTime}) in (select id, push_time from jsonb_to_recordset(${planned}::jsonb) as v(id uuid, push_time timestamptz))`,
                  unkept(),
                ),
              )
              .returning({ id: manifests.id });
            const ids = new Set(rows.map((r) => r.id));
            await recorded(
              tx,
              batch.filter((d) => ids.has(d.manifest!.id)),
            );
            return ids;
          });
          for (const id of ids) deletedThisRound.add(id);
        }
        for (const d of remaining) if (deletedThisRound.has(d.manifest!.id)) outcome.set(d, "deleted");
        if (deletedThisRound.size === 0) break;
        remaining = remaining.filter((d) => !deletedThisRound.has(d.manifest!.id));
      }
    } finally {
      this.cache.invalidateRepository(target.repositoryId);
    }
    return slice.map((d) => outcome.get(d) ?? "skipped");
  }
}

/** The later of two pull times (either may be absent). */
function later(a: Date | null, b: Date | null): Date | null {
  if (a === null) return b;
  if (b === null) return a;
  return a.getTime() >= b.getTime() ? a : b;
}

/** What garbage collection deletes by, at the moment of the DELETE: no tag, no index of the repository lists it, no subject left. */
function unkept(): SQL {
  return sql`not exists (select 1 from ${tags} t where t.manifest_id = ${manifests.id})
    and not exists (select 1 from ${manifestReferences} r join ${manifests} p on p.id = r.manifest_id
      where r.kind = 'manifest' and r.digest = ${manifests.digest} and p.repository_id = ${manifests.repositoryId} and p.id <> ${manifests.id})
    and (${manifests.subjectDigest} is null or not exists (select 1 from ${manifests} s
      where s.repository_id = ${manifests.repositoryId} and s.digest = ${manifests.subjectDigest}))`;
}

const MAX_TEXT = 1024;

/** Why, for the audit log and the event: the policy, the rule, and an immutability rule bypassed. */
function reasonText(target: Target, d: PlannedDeletion): string {
  const bypass = d.immutabilityRuleId ? ` (immutable under rule ${d.immutabilityRuleId}, deleted because the policy has delete_immutable)` : "";
  return `retention policy ${target.policy.id} (${policyScopeText(target.policy)}): ${d.reason}: ${d.rule}${bypass}`;
}

/** The audit event of one deletion. */
function auditRow(target: Target, d: PlannedDeletion, trail: AuditTrail): typeof auditEvents.$inferInsert {
  const name = d.target === "tag" ? `${target.repositoryName}:${d.tag!.name}` : `${target.repositoryName}@${d.digest}`;
  const detail = reasonText(target, d);
  return {
    actorId: trail.actorId,
    actorName: trail.actorName.slice(0, MAX_TEXT),
    requestId: trail.requestId.slice(0, MAX_TEXT),
    clientAddress: trail.clientAddress.slice(0, MAX_TEXT),
    action: d.target === "tag" ? "retention.delete_tag" : "retention.delete_manifest",
    resourceType: d.target,
    resourceId: d.target === "tag" ? d.tag!.id : d.manifest!.id,
    resourceName: name.slice(0, MAX_TEXT),
    outcome: "success",
    detail: detail.length > MAX_TEXT ? `${detail.slice(0, MAX_TEXT - 1)}…` : detail,
  };
}

/** A request's page size: 0 → the default, beyond the maximum → the maximum, negative → INVALID_ARGUMENT. */
export function retentionPageSize(requested: number): number {
  if (requested < 0) throw invalidArgument(`page_size: must not be negative (got ${requested})`);
  return requested === 0 ? RETENTION_DEFAULT_PAGE : Math.min(requested, RETENTION_MAX_PAGE);
}
