// Docker registry scopes (`repository:local/team/app:pull,push`, `registry:catalog:*`) and what
// the policy grants of them: the intersection of what was asked and what is allowed, never an
// error for asking too much (src/auth/token-endpoint.ts issues it, src/auth/registry-access.ts
// checks it).
import type { Access } from "./jwt.js";
import type { Locator } from "./locate.js";
import { decide, type Action, type Principal, type Resource } from "./policy.js";

export interface Scope {
  type: string;
  name: string;
  actions: string[];
}

/** What each registry action needs of the policy. */
export const POLICY_ACTION: Record<string, Action> = { pull: "read", push: "write", delete: "delete" };
const REPOSITORY_ACTIONS = Object.keys(POLICY_ACTION);

/**
 * `type[(class)]:name:action[,action]`. The name may itself hold ":" (a host with a port), so
 * the type is what comes before the first ":" and the actions what comes after the last.
 */
export function parseScope(text: string): Scope | undefined {
  const first = text.indexOf(":");
  const last = text.lastIndexOf(":");
  if (first <= 0 || last === first) return undefined;
  const type = text.slice(0, first).replace(/\([^)]*\)$/, "");
  const name = text.slice(first + 1, last);
  const actions = text
    .slice(last + 1)
    .split(",")
    .map((a) => a.trim())
    .filter((a) => a !== "");
  if (name === "" || type === "") return undefined;
  return { type, name, actions };
}

export function formatScope(scope: Scope): string {
  return `${scope.type}:${scope.name}:${scope.actions.join(",")}`;
}

/** The repository actions the principal may do on `resource`. */
export function allowedActions(principal: Principal, resource: Resource): string[] {
  return REPOSITORY_ACTIONS.filter((a) => decide(principal, POLICY_ACTION[a]!, resource).allowed);
}

/** The grants of a token: for each scope asked, the actions the policy allows (scopes that get none are left out). */
export async function grant(principal: Principal, scopes: Scope[], locate: Locator): Promise<Access[]> {
  const access: Access[] = [];
  const seen = new Map<string, Access>();
  for (const scope of scopes) {
    let actions: string[] = [];
    if (scope.type === "registry" && scope.name === "catalog") {
      // Everyone may ask for the catalog: it shows each caller only what it may see.
      actions = scope.actions.filter((a) => a === "*");
    } else if (scope.type === "repository") {
      const asked = scope.actions.includes("*") ? REPOSITORY_ACTIONS : scope.actions.filter((a) => a in POLICY_ACTION);
      if (asked.length > 0) {
        const allowed = allowedActions(principal, await locate.image(scope.name));
        actions = asked.filter((a) => allowed.includes(a));
      }
    }
    if (actions.length === 0) continue;
    const key = `${scope.type}:${scope.name}`;
    const existing = seen.get(key);
    if (existing) existing.actions = [...new Set([...existing.actions, ...actions])];
    else {
      const entry = { type: scope.type, name: scope.name, actions };
      seen.set(key, entry);
      access.push(entry);
    }
  }
  return access;
}
