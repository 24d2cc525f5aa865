// Rotating SECRET_KEY: which stored credentials (registries' upstream credentials, webhooks'
// secrets) the configured keys open (checked at start-up), and re-sealing those under a previous
// key under SECRET_KEY (`npm run reseal`). Registry names and webhook ids only ever leave here,
// never a secret.
import type { Logger } from "pino";
import type { Sealer } from "./secrets.js";
import type { CredentialStore, StoredCredential } from "./store/credentials.js";

export interface CredentialAudit {
  /** Registries (and webhooks, as `webhook <id> (<scope>)`) whose credential is sealed under SECRET_KEY. */
  current: string[];
  /** Under a key of SECRET_KEY_PREVIOUS, or in the first format: `npm run reseal` moves them. */
  previous: string[];
  /** Under no configured key (or damaged): unusable until the key is given back or the credential set again. */
  unopenable: string[];
}

/** Logs, once per process start, what an operator must know before an upstream call (or a webhook delivery) fails. */
export async function reportCredentials(credentials: CredentialStore, sealer: Sealer, log: Logger): Promise<CredentialAudit> {
  const audit: CredentialAudit = { current: [], previous: [], unopenable: [] };
  const owners: Record<keyof CredentialAudit, StoredCredential[]> = { current: [], previous: [], unopenable: [] };
  for (const row of await credentials.list()) {
    const state = sealer.state(row.sealed);
    audit[state].push(row.name);
    owners[state].push(row);
  }
  const { unopenable, previous } = audit;
  if (unopenable.length > 0) {
    log.warn(
      { ...byOwner(owners.unopenable), underPreviousKey: previous.length },
      `${unopenable.length} stored credential${unopenable.length === 1 ? "" : "s"} cannot be opened with SECRET_KEY/SECRET_KEY_PREVIOUS: ` +
        `${describeOwners(owners.unopenable)} (put the old key in SECRET_KEY_PREVIOUS, or set their credentials again)`,
    );
  }
  if (previous.length > 0) {
    log.info(
      byOwner(owners.previous),
      `${previous.length} stored credential${previous.length === 1 ? " is" : "s are"} not sealed under SECRET_KEY yet: \`npm run reseal\` re-seals them`,
    );
  }
  return audit;
}

/** The log line's fields: registry names, and webhook ids when there are any. */
function byOwner(rows: StoredCredential[]): { registries: string[]; webhooks?: string[] } {
  const hooks = rows.filter((r) => r.owner === "webhook").map((r) => r.id);
  return { registries: rows.filter((r) => r.owner === "registry").map((r) => r.name), ...(hooks.length > 0 ? { webhooks: hooks } : {}) };
}

/** `registries a, b` / `webhooks x` / both, for the log line's message. */
function describeOwners(rows: StoredCredential[]): string {
  const { registries, webhooks } = byOwner(rows);
  return [registries.length > 0 ? `registries ${listNames(registries)}` : "", webhooks ? `webhooks ${listNames(webhooks)}` : ""].filter(Boolean).join("; ");
}

/** At most this many names in one log line; the structured field has them all. */
const NAMES_IN_MESSAGE = 20;

function listNames(names: string[]): string {
  const shown = names.slice(0, NAMES_IN_MESSAGE).join(", ");
  return names.length > NAMES_IN_MESSAGE ? `${shown}, … (${names.length - NAMES_IN_MESSAGE} more)` : shown;
}

export interface ResealReport {
  dryRun: boolean;
  /** Key id of SECRET_KEY (a hash; never the key). */
  keyId: string;
  /** Re-sealed under SECRET_KEY (or, in a dry run, would be). */
  resealed: string[];
  alreadyCurrent: string[];
  unopenable: string[];
  /** Changed by someone else on every attempt; left alone (running again picks them up). */
  contended: string[];
}

/** Compare-and-set attempts per registry before it counts as contended. */
const ATTEMPTS = 3;

/**
 * Re-seals every credential not under SECRET_KEY, one registry at a time, each a compare-and-set
 * on the value it read: a concurrent UpdateRegistry (or a second reseal) is never overwritten;
 * the value it wrote is judged again instead.
 */
export async function resealCredentials(credentials: CredentialStore, sealer: Sealer, options: { dryRun: boolean }): Promise<ResealReport> {
  const keyId = sealer.sealingKeyId;
  if (keyId === undefined) throw new Error("SECRET_KEY is not set: there is no key to seal under");
  const report: ResealReport = { dryRun: options.dryRun, keyId, resealed: [], alreadyCurrent: [], unopenable: [], contended: [] };
  for (const row of await credentials.list()) {
    let sealed: string | null = row.sealed;
    let outcome: "resealed" | "alreadyCurrent" | "unopenable" | "contended" | "gone" = "contended";
    for (let attempt = 0; attempt < ATTEMPTS && outcome === "contended"; attempt++) {
      if (sealed === null) {
        outcome = "gone";
        break;
      }
      const state = sealer.state(sealed);
      if (state === "current") outcome = "alreadyCurrent";
      else if (state === "unopenable") outcome = "unopenable";
      else if (options.dryRun) outcome = "resealed";
      else if (await credentials.replace(row.id, sealed, sealer.reseal(sealed)!)) outcome = "resealed";
      else sealed = await credentials.get(row.id);
    }
    if (outcome !== "gone") report[outcome].push(row.name);
  }
  return report;
}
