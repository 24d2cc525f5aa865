// The one decision function, exhaustively: every principal of a small universe × every action ×
// every kind of resource, against a table written by hand from docs/identity.md; then properties
// over random bindings (more role or a wider scope never allows less; anonymous callers only read
// what is public; a global admin may do everything).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { adminScope, decide, readableScope, type Action, type Binding, type Principal, type Resource, type Role } from "../src/auth/policy.js";

const R1 = { id: "r1", name: "local", public: false };
const R2 = { id: "r2", name: "mirror", public: false };
const R3 = { id: "r3", name: "open", public: true };
const N1 = { id: "n1", name: "team", public: false };
const N2 = { id: "n2", name: "other", public: false };
const N4 = { id: "n4", name: "shared", public: true };
const N5 = { id: "n5", name: "inside", public: false };

const account = (id: string) => ({ id, name: id, kind: "user" as const });
const bind = (role: Role, scope: Binding["scope"]): Binding => ({ role, scope });
const global = { kind: "global" } as const;
const reg = (registryId: string) => ({ kind: "registry", registryId }) as const;
const ns = (registryId: string, namespaceId: string) => ({ kind: "namespace", registryId, namespaceId }) as const;

const PRINCIPALS: Record<string, Principal> = {
  anon: { bindings: [] },
  user: { account: account("user"), bindings: [] },
  gR: { account: account("gR"), bindings: [bind("reader", global)] },
  gW: { account: account("gW"), bindings: [bind("writer", global)] },
  gA: { account: account("gA"), bindings: [bind("admin", global)] },
  rR: { account: account("rR"), bindings: [bind("reader", reg("r1"))] },
  rW: { account: account("rW"), bindings: [bind("writer", reg("r1"))] },
  rA: { account: account("rA"), bindings: [bind("admin", reg("r1"))] },
  nR: { account: account("nR"), bindings: [bind("reader", ns("r1", "n1"))] },
  nW: { account: account("nW"), bindings: [bind("writer", ns("r1", "n1"))] },
  nA: { account: account("nA"), bindings: [bind("admin", ns("r1", "n1"))] },
  oW: { account: account("oW"), bindings: [bind("writer", ns("r1", "n2"))] },
  xA: { account: account("xA"), bindings: [bind("admin", reg("r2"))] },
  // AUTH_ANONYMOUS_ADMIN: no account, a global admin binding.
  dev: { bindings: [bind("admin", global)] },
};

const RESOURCES: Record<string, Resource> = {
  service: { type: "service" },
  reg1: { type: "registry", registry: R1 },
  regPublic: { type: "registry", registry: R3 },
  regWithPublicNs: { type: "registry", registry: R2, publicNamespace: true },
  ns1: { type: "namespace", registry: R1, namespace: N1 },
  ns2: { type: "namespace", registry: R1, namespace: N2 },
  nsPublic: { type: "namespace", registry: R2, namespace: N4 },
  repo1: { type: "repository", registry: R1, namespace: N1, namespaceName: "team", repository: "app" },
  repoNewNamespace: { type: "repository", registry: R1, namespaceName: "fresh", repository: "app" },
  repoPublicRegistry: { type: "repository", registry: R3, namespace: N5, namespaceName: "inside", repository: "app" },
  selfAccount: { type: "account", accountId: "user" },
  otherAccount: { type: "account", accountId: "someone" },
  missing: { type: "missing", noun: "tag", id: "t-404" },
};

const ACTIONS: Action[] = ["read", "write", "delete", "manage", "administer", "self", "signed-in"];
const ACCOUNTS = Object.keys(PRINCIPALS).filter((p) => PRINCIPALS[p]!.account);
const ALL = Object.keys(PRINCIPALS);
const gR = ["gR", "gW", "gA", "dev"];
const gW = ["gW", "gA", "dev"];
const gA = ["gA", "dev"];

// Who may, per resource and action. "self" and "signed-in" are the same for every resource but
// accounts: the defaults below.
const EXPECTED: Record<string, Partial<Record<Action, string[]>>> = {
  service: { read: gR, write: gW, delete: gA, manage: gA, administer: gA },
  reg1: { read: [...gR, "rR", "rW", "rA", "nR", "nW", "nA", "oW"], write: [...gW, "rW", "rA"], delete: [...gA, "rA"], manage: [...gA, "rA"], administer: gA },
  regPublic: { read: ALL, write: gW, delete: gA, manage: gA, administer: gA },
  regWithPublicNs: { read: ALL, write: [...gW, "xA"], delete: [...gA, "xA"], manage: [...gA, "xA"], administer: gA },
  ns1: {
    read: [...gR, "rR", "rW", "rA", "nR", "nW", "nA"],
    write: [...gW, "rW", "rA", "nW", "nA"],
    delete: [...gA, "rA", "nA"],
    manage: [...gA, "rA", "nA"],
    administer: gA,
  },
  ns2: { read: [...gR, "rR", "rW", "rA", "oW"], write: [...gW, "rW", "rA", "oW"], delete: [...gA, "rA"], manage: [...gA, "rA"], administer: gA },
  nsPublic: { read: ALL, write: [...gW, "xA"], delete: [...gA, "xA"], manage: [...gA, "xA"], administer: gA },
  repo1: {
    read: [...gR, "rR", "rW", "rA", "nR", "nW", "nA"],
    write: [...gW, "rW", "rA", "nW", "nA"],
    delete: [...gA, "rA", "nA"],
    manage: [...gA, "rA", "nA"],
    administer: gA,
  },
  repoNewNamespace: { read: [...gR, "rR", "rW", "rA"], write: [...gW, "rW", "rA"], delete: [...gA, "rA"], manage: [...gA, "rA"], administer: gA },
  repoPublicRegistry: { read: ALL, write: gW, delete: gA, manage: gA, administer: gA },
  selfAccount: { read: gR, write: gW, delete: gA, manage: gA, administer: gA, self: ["user", ...gA] },
  otherAccount: { read: gR, write: gW, delete: gA, manage: gA, administer: gA },
  missing: { read: gR, write: gW, delete: gA, manage: gA, administer: gA },
};
const DEFAULTS: Partial<Record<Action, string[]>> = { self: gA, "signed-in": [...ACCOUNTS, "dev"] };

describe("policy: decide()", () => {
  for (const [resourceName, resource] of Object.entries(RESOURCES)) {
    for (const action of ACTIONS) {
      it(`${action} on ${resourceName}`, () => {
        const allowed = EXPECTED[resourceName]![action] ?? DEFAULTS[action];
        expect(allowed, `the table has a row for ${action} on ${resourceName}`).toBeDefined();
        const actual = ALL.filter((p) => decide(PRINCIPALS[p]!, action, resource).allowed);
        expect(actual.sort()).toEqual([...new Set(allowed)].sort());
      });
    }
  }

  it("names the missing permission at the smallest scope that would allow it", () => {
    const needs = (p: string, a: Action, r: string) => {
      const d = decide(PRINCIPALS[p]!, a, RESOURCES[r]!);
      return d.allowed ? "allowed" : d.needs;
    };
    expect(needs("nR", "write", "repo1")).toBe("needs writer on namespace local/team");
    expect(needs("nW", "delete", "repo1")).toBe("needs admin on namespace local/team");
    expect(needs("nW", "write", "repoNewNamespace")).toBe("needs writer on registry local");
    expect(needs("rR", "manage", "reg1")).toBe("needs admin on registry local");
    expect(needs("anon", "read", "ns1")).toBe("needs reader on namespace local/team");
    expect(needs("rA", "administer", "reg1")).toBe("needs admin at global scope");
    expect(needs("gW", "write", "missing")).toBe("allowed");
    expect(needs("nA", "read", "missing")).toBe("needs reader on tag t-404");
    expect(needs("anon", "signed-in", "service")).toBe("needs to be signed in");
    expect(needs("nA", "self", "otherAccount")).toBe("needs to be that account, or admin at global scope");
  });
});

describe("policy: properties", () => {
  const roles: Role[] = ["reader", "writer", "admin"];
  const scopes: Binding["scope"][] = [global, reg("r1"), reg("r2"), ns("r1", "n1"), ns("r1", "n2"), ns("r2", "n4")];
  const bindingArb = fc.record({ role: fc.constantFrom(...roles), scope: fc.constantFrom(...scopes) });
  const principalArb = fc.record({
    account: fc.option(fc.constant(account("p")), { nil: undefined }),
    bindings: fc.array(bindingArb, { maxLength: 4 }),
  });
  const resourceArb = fc.constantFrom(...Object.values(RESOURCES));
  const actionArb = fc.constantFrom(...ACTIONS);

  it("another binding never takes a permission away", () => {
    fc.assert(
      fc.property(principalArb, bindingArb, actionArb, resourceArb, (p, extra, a, r) => {
        if (decide(p, a, r).allowed) expect(decide({ ...p, bindings: [...p.bindings, extra] }, a, r).allowed).toBe(true);
      }),
    );
  });

  it("a higher role, or the registry's or the global scope, never allows less", () => {
    const wider = (b: Binding): Binding[] => {
      const up = roles.slice(roles.indexOf(b.role)).map((role) => ({ ...b, role }));
      const scopesUp: Binding["scope"][] =
        b.scope.kind === "namespace" ? [b.scope, reg(b.scope.registryId), global] : b.scope.kind === "registry" ? [b.scope, global] : [global];
      return up.flatMap((x) => scopesUp.map((scope) => ({ ...x, scope })));
    };
    fc.assert(
      fc.property(bindingArb, actionArb, resourceArb, (b, a, r) => {
        if (!decide({ account: account("p"), bindings: [b] }, a, r).allowed) return;
        for (const w of wider(b)) expect(decide({ account: account("p"), bindings: [w] }, a, r).allowed).toBe(true);
      }),
    );
  });

  it("without bindings, only public reads, the account's own things and being signed in are allowed", () => {
    fc.assert(
      fc.property(fc.boolean(), actionArb, resourceArb, (signedIn, a, r) => {
        const p: Principal = { account: signedIn ? account("user") : undefined, bindings: [] };
        const d = decide(p, a, r);
        const publicRead = a === "read" && EXPECTED[Object.keys(RESOURCES).find((k) => RESOURCES[k] === r)!]!.read!.includes("anon");
        const own = signedIn && ((a === "self" && r.type === "account" && r.accountId === "user") || a === "signed-in");
        expect(d.allowed).toBe(publicRead || own);
        if (!d.allowed) expect(d.needs).toMatch(/^needs /);
      }),
    );
  });

  it("a global admin may do everything", () => {
    fc.assert(
      fc.property(actionArb, resourceArb, (a, r) => {
        expect(decide(PRINCIPALS.gA!, a, r).allowed).toBe(true);
      }),
    );
  });
});

describe("policy: list scopes", () => {
  it("is everything for a global role, else the registries and namespaces bound", () => {
    expect(readableScope(PRINCIPALS.gR!)).toBeUndefined();
    expect(readableScope(PRINCIPALS.anon!)).toEqual({ registries: [], namespaces: [] });
    expect(readableScope({ bindings: [bind("reader", reg("r1")), bind("writer", ns("r2", "n4")), bind("admin", ns("r1", "n1"))] })).toEqual({
      registries: ["r1"],
      namespaces: ["n4", "n1"],
    });
    expect(adminScope(PRINCIPALS.gW!)).toEqual({ registries: [], namespaces: [] });
    expect(adminScope({ bindings: [bind("reader", reg("r1")), bind("admin", ns("r1", "n1"))] })).toEqual({ registries: [], namespaces: ["n1"] });
    expect(adminScope(PRINCIPALS.dev!)).toBeUndefined();
  });
});
