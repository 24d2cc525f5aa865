// Identity and access on the API, with auth on, over real clients: accounts, tokens, role bindings
// and what each role may do where; lists filtered with a total_size that counts only what the
// caller may see; public registries for anonymous readers; the audit log.
import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountKind } from "../gen/artifact/v1/account_pb.js";
import { AuditOutcome } from "../gen/artifact/v1/audit_pb.js";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import { Role, RoleScope } from "../gen/artifact/v1/role_binding_pb.js";
import { basic, bearer, bindRole, createAccount, identityClients, startAuthServer, ADMIN_TOKEN, type IdentityClients } from "./support/identity.js";
import { digestOf, expectCode, unique } from "./support/clients.js";
import { databaseKinds } from "./support/database.js";
import type { TestServer } from "./support/server.js";

describe.each(databaseKinds())("identity on the API, on %s", (kind) => {
  let server: TestServer;
  let admin: IdentityClients;
  let anonymous: IdentityClients;

  beforeAll(async () => {
    server = await startAuthServer(kind);
    admin = identityClients(server.httpUrl, ADMIN_TOKEN);
    anonymous = identityClients(server.httpUrl);
  });
  afterAll(() => server?.stop());

  /** registry → 2 namespaces → a repository with a tag in each; REMOTE so tags are free records. */
  async function catalog(options: { public?: boolean } = {}) {
    const registry = await admin.registries.createRegistry({
      registry: { name: unique("reg"), kind: RegistryKind.REMOTE, url: "http://127.0.0.1:9", public: options.public ?? false },
    });
    const team = await admin.namespaces.createNamespace({ namespace: { registryId: registry.id, name: unique("team").replace(/-/g, ".") } });
    const other = await admin.namespaces.createNamespace({ namespace: { registryId: registry.id, name: unique("other").replace(/-/g, ".") } });
    const teamRepo = await admin.repositories.createRepository({ repository: { namespaceId: team.id, name: "app" } });
    const otherRepo = await admin.repositories.createRepository({ repository: { namespaceId: other.id, name: "app" } });
    const tag = { name: "1.0", digest: digestOf(1), mediaType: "application/vnd.oci.image.manifest.v1+json", sizeBytes: 10n };
    const teamTag = await admin.tags.createTag({ tag: { ...tag, repositoryId: teamRepo.id } });
    const otherTag = await admin.tags.createTag({ tag: { ...tag, repositoryId: otherRepo.id } });
    return { registry, team, other, teamRepo, otherRepo, teamTag, otherTag };
  }

  it("knows who calls: WhoAmI for the bootstrap admin, a user, and refuses anonymous", async () => {
    const me = await admin.accounts.whoAmI({});
    expect(me.account?.name).toBe("admin");
    expect(me.authenticatedBy).toBe("token");
    expect(me.roleBindings.map((b) => [b.role, b.scope])).toEqual([[Role.ADMIN, RoleScope.GLOBAL]]);

    const user = await createAccount(admin, server.httpUrl);
    const who = await user.clients.accounts.whoAmI({});
    expect(who.account).toMatchObject({ id: user.id, name: user.name, kind: AccountKind.USER, hasPassword: true });
    expect(who.roleBindings).toEqual([]);
    await expectCode(anonymous.accounts.whoAmI({}), Code.Unauthenticated);
  });

  it("a namespace reader reads there, and nowhere else; writing needs writer, deleting admin", async () => {
    const c = await catalog();
    const user = await createAccount(admin, server.httpUrl);
    await bindRole(admin, user.id, "reader", { namespaceId: c.team.id });
    const u = user.clients;

    expect((await u.tags.getTag({ id: c.teamTag.id })).name).toBe("1.0");
    expect((await u.repositories.getRepository({ id: c.teamRepo.id })).name).toBe("app");
    // Seeing the registry its namespace is in: allowed, to find the way there.
    expect((await u.registries.getRegistry({ id: c.registry.id })).id).toBe(c.registry.id);
    await expectCode(u.tags.getTag({ id: c.otherTag.id }), Code.PermissionDenied, `needs reader on namespace ${c.registry.name}/${c.other.name}`);
    await expectCode(
      u.repositories.createRepository({ repository: { namespaceId: c.team.id, name: "new" } }),
      Code.PermissionDenied,
      "needs writer on namespace",
    );
    await expectCode(
      u.tags.updateTag({ tag: { id: c.teamTag.id, digest: digestOf(2) }, updateMask: { paths: ["digest"] } }),
      Code.PermissionDenied,
      `needs writer on namespace ${c.registry.name}/${c.team.name}`,
    );

    // Writer: pushes and moves tags; still no delete.
    await bindRole(admin, user.id, "writer", { namespaceId: c.team.id });
    const moved = await u.tags.updateTag({ tag: { id: c.teamTag.id, digest: digestOf(2) }, updateMask: { paths: ["digest"] } });
    expect(moved.digest).toBe(digestOf(2));
    const created = await u.repositories.createRepository({ repository: { namespaceId: c.team.id, name: "new" } });
    await expectCode(u.repositories.deleteRepository({ id: created.id }), Code.PermissionDenied, "needs admin on namespace");
    await expectCode(u.repositories.createRepository({ repository: { namespaceId: c.other.id, name: "new" } }), Code.PermissionDenied, "needs writer");
    // Making the namespace public is an admin's decision.
    await expectCode(
      u.namespaces.updateNamespace({ namespace: { id: c.team.id, public: true }, updateMask: { paths: ["public"] } }),
      Code.PermissionDenied,
      "needs admin",
    );
    // No role of its own at global scope: no registry, no GC, no accounts, no audit log.
    await expectCode(
      u.registries.createRegistry({ registry: { name: unique("reg"), kind: RegistryKind.HOSTED } }),
      Code.PermissionDenied,
      "needs admin at global scope",
    );
    await expectCode(u.accounts.listAccounts({}), Code.PermissionDenied, "needs admin at global scope");
    await expectCode(u.audit.listAuditEvents({}), Code.PermissionDenied, "needs admin at global scope");

    // Admin there: deletes.
    await bindRole(admin, user.id, "admin", { namespaceId: c.team.id });
    await u.repositories.deleteRepository({ id: created.id });
    await expectCode(u.repositories.deleteRepository({ id: c.otherRepo.id }), Code.PermissionDenied, "needs admin on namespace");
  });

  it("a registry role covers every namespace in it, and no other registry", async () => {
    const a = await catalog();
    const b = await catalog();
    const robot = await createAccount(admin, server.httpUrl, { robot: true });
    await bindRole(admin, robot.id, "writer", { registryId: a.registry.id });
    const r = robot.clients;
    await r.repositories.createRepository({ repository: { namespaceId: a.other.id, name: "ci" } });
    await r.tags.getTag({ id: a.teamTag.id });
    await expectCode(r.tags.getTag({ id: b.teamTag.id }), Code.PermissionDenied, `needs reader on namespace ${b.registry.name}/`);
    await expectCode(r.registries.getRegistry({ id: b.registry.id }), Code.PermissionDenied, `needs reader on registry ${b.registry.name}`);
    // Over gRPC too (the same interceptor).
    const grpc = identityClients(server.grpcUrl, undefined, createGrpcTransport({ baseUrl: server.grpcUrl, interceptors: [bearer(robot.token)] }));
    await expectCode(grpc.tags.getTag({ id: b.teamTag.id }), Code.PermissionDenied, "needs reader");
    expect((await grpc.tags.getTag({ id: a.teamTag.id })).id).toBe(a.teamTag.id);
  });

  it("lists only what the caller may read, with total_size and pages counting only that", async () => {
    const a = await catalog();
    const b = await catalog();
    const user = await createAccount(admin, server.httpUrl);
    await bindRole(admin, user.id, "reader", { namespaceId: a.team.id });
    await bindRole(admin, user.id, "reader", { registryId: b.registry.id });
    const u = user.clients;

    const registries = await u.registries.listRegistries({ pageSize: 1000 });
    // Registry b by its binding, registry a because a namespace in it is the user's.
    expect(new Set(registries.registries.map((r) => r.id))).toEqual(new Set([a.registry.id, b.registry.id]));
    expect(registries.totalSize).toBe(2);

    const namespaces = await u.namespaces.listNamespaces({ pageSize: 1000 });
    expect(new Set(namespaces.namespaces.map((n) => n.id))).toEqual(new Set([a.team.id, b.team.id, b.other.id]));
    expect(namespaces.totalSize).toBe(3);

    const page1 = await u.tags.listTags({ pageSize: 2, orderBy: "create_time" });
    expect(page1.totalSize).toBe(3);
    expect(page1.tags).toHaveLength(2);
    const page2 = await u.tags.listTags({ pageSize: 2, orderBy: "create_time", pageToken: page1.nextPageToken });
    expect(page2.tags).toHaveLength(1);
    expect(page2.nextPageToken).toBe("");
    expect(new Set([...page1.tags, ...page2.tags].map((t) => t.id))).toEqual(new Set([a.teamTag.id, b.teamTag.id, b.otherTag.id]));

    // A list by a parent the caller may not see is empty, not a leak of its size.
    const hidden = await u.repositories.listRepositories({ namespaceId: a.other.id });
    expect(hidden).toMatchObject({ repositories: [], totalSize: 0 });

    // Nobody's bindings: only the public ones (none of these).
    const nobody = await createAccount(admin, server.httpUrl);
    const seen = await nobody.clients.tags.listTags({ repositoryId: a.teamRepo.id });
    expect(seen).toMatchObject({ tags: [], totalSize: 0 });
  });

  it("lets anyone read a public registry and pull from it, never write", async () => {
    const open = await catalog({ public: true });
    const closed = await catalog();
    expect((await anonymous.registries.getRegistry({ id: open.registry.id })).public).toBe(true);
    expect((await anonymous.tags.getTag({ id: open.otherTag.id })).name).toBe("1.0");
    const listed = await anonymous.repositories.listRepositories({ pageSize: 1000 });
    const ids = listed.repositories.map((r) => r.id);
    expect(ids).toContain(open.teamRepo.id);
    expect(ids).not.toContain(closed.teamRepo.id);
    expect(listed.totalSize).toBe(listed.repositories.length);
    await expectCode(anonymous.tags.getTag({ id: closed.teamTag.id }), Code.Unauthenticated, "sign in");
    await expectCode(anonymous.repositories.createRepository({ repository: { namespaceId: open.team.id, name: "x" } }), Code.Unauthenticated, "needs writer");
    const reader = await createAccount(admin, server.httpUrl);
    await expectCode(
      reader.clients.repositories.createRepository({ repository: { namespaceId: open.team.id, name: "x" } }),
      Code.PermissionDenied,
      "needs writer",
    );

    // A public namespace in a private registry.
    await admin.namespaces.updateNamespace({ namespace: { id: closed.other.id, public: true }, updateMask: { paths: ["public"] } });
    expect((await anonymous.tags.getTag({ id: closed.otherTag.id })).id).toBe(closed.otherTag.id);
    await expectCode(anonymous.tags.getTag({ id: closed.teamTag.id }), Code.Unauthenticated);
  });

  it("names, searches and digests find only what the caller may read; a name it may not read is NOT_FOUND, as one that does not exist", async () => {
    const c = await catalog();
    const elsewhere = await catalog();
    const digest = `sha256:${randomBytes(32).toString("hex")}`;
    const teamTag = await admin.tags.createTag({ tag: { repositoryId: c.teamRepo.id, name: "prod", digest } });
    const otherTag = await admin.tags.createTag({ tag: { repositoryId: c.otherRepo.id, name: "prod", digest } });
    const [reg, team, other] = [c.registry.name, `${c.registry.name}/${c.team.name}`, `${c.registry.name}/${c.other.name}`];
    const user = await createAccount(admin, server.httpUrl);
    await bindRole(admin, user.id, "reader", { namespaceId: c.team.id });
    const u = user.clients;

    /** What a caller finds by each name, by search and by digest. */
    async function sees(who: IdentityClients) {
      const found = async (call: Promise<{ id: string }>) =>
        call.then(
          (r) => r.id,
          (err: unknown) => {
            const e = ConnectError.from(err);
            // Refused or missing: the same code and the same words as for a name nobody ever used.
            expect(Code[e.code]).toBe("NotFound");
            expect(e.rawMessage).toMatch(/^(registry|namespace|repository|tag) \S+ not found$/);
            return "not found";
          },
        );
      return {
        registry: await found(who.registries.lookupRegistry({ name: reg })),
        team: await found(who.namespaces.lookupNamespace({ name: team })),
        other: await found(who.namespaces.lookupNamespace({ name: other })),
        teamRepo: await found(who.repositories.lookupRepository({ name: `${team}/app` })),
        otherRepo: await found(who.repositories.lookupRepository({ name: `${other}/app` })),
        teamTag: await found(who.tags.lookupTag({ name: `${team}/app:prod` })),
        otherTag: await found(who.tags.lookupTag({ name: `${other}/app:prod` })),
        elsewhere: await found(who.registries.lookupRegistry({ name: elsewhere.registry.name })),
        otherTags: await who.tags.listTags({ repositoryName: `${other}/app` }).then(
          (r) => r.tags.map((t) => t.id),
          (err: unknown) => Code[ConnectError.from(err).code],
        ),
        namespaces: (await who.namespaces.listNamespaces({ registryName: reg }).catch(() => ({ namespaces: [] }))).namespaces.map((n) => n.fullName),
        searchRepositories: (await who.repositories.searchRepositories({ query: reg })).repositories.map((r) => r.fullName),
        searchTags: (await who.tags.searchTags({ query: `${reg}/` })).tags.map((t) => t.fullName),
        digestRepositories: (await who.repositories.searchRepositories({ digest })).repositories.map((r) => r.id),
        digestTags: (await who.tags.searchTags({ digest })).tags.map((t) => t.id),
      };
    }
    const nothing = { team: "not found", other: "not found", teamRepo: "not found", otherRepo: "not found", teamTag: "not found", otherTag: "not found" };

    expect(await sees(u)).toEqual({
      registry: c.registry.id,
      team: c.team.id,
      other: "not found",
      teamRepo: c.teamRepo.id,
      otherRepo: "not found",
      teamTag: teamTag.id,
      otherTag: "not found",
      elsewhere: "not found",
      otherTags: "NotFound",
      namespaces: [team],
      searchRepositories: [`${team}/app`],
      searchTags: [`${team}/app:1.0`, `${team}/app:prod`],
      digestRepositories: [c.teamRepo.id],
      digestTags: [teamTag.id],
    });
    // By id the same repository is a refusal: ids are not guessed, and the answer says what is missing.
    await expectCode(u.repositories.getRepository({ id: c.otherRepo.id }), Code.PermissionDenied, "needs reader");

    expect(await sees(anonymous)).toEqual({
      registry: "not found",
      ...nothing,
      elsewhere: "not found",
      otherTags: "NotFound",
      namespaces: [],
      searchRepositories: [],
      searchTags: [],
      digestRepositories: [],
      digestTags: [],
    });

    // A public namespace: everyone finds what is in it, and only that.
    await admin.namespaces.updateNamespace({ namespace: { id: c.other.id, public: true }, updateMask: { paths: ["public"] } });
    expect(await sees(anonymous)).toEqual({
      registry: c.registry.id,
      ...nothing,
      other: c.other.id,
      otherRepo: c.otherRepo.id,
      otherTag: otherTag.id,
      elsewhere: "not found",
      otherTags: [c.otherTag.id, otherTag.id],
      namespaces: [other],
      searchRepositories: [`${other}/app`],
      searchTags: [`${other}/app:1.0`, `${other}/app:prod`],
      digestRepositories: [c.otherRepo.id],
      digestTags: [otherTag.id],
    });

    // The admin finds everything.
    const all = await sees(admin);
    expect(all).toMatchObject({ other: c.other.id, otherRepo: c.otherRepo.id, elsewhere: elsewhere.registry.id, namespaces: [team, other].sort() });
    expect(all.digestTags.sort()).toEqual([teamTag.id, otherTag.id].sort());
  });

  it("tokens: created once with their secret, listed without it, revoked for good; an account manages its own", async () => {
    const user = await createAccount(admin, server.httpUrl);
    const u = user.clients;
    const created = await u.tokens.createToken({ name: "laptop", expiration: { case: "ttl", value: { seconds: 3600n } } });
    expect(created.secret).toMatch(/^art_[A-Za-z0-9_-]{43}$/);
    expect(created.token?.accountId).toBe(user.id);
    const listed = await u.tokens.listTokens({});
    expect(listed.tokens.map((t) => t.name).sort()).toEqual(["laptop", "test"]);
    expect(JSON.stringify(listed, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))).not.toContain(created.secret);

    const laptop = identityClients(server.httpUrl, created.secret);
    expect((await laptop.accounts.whoAmI({})).account?.id).toBe(user.id);
    await u.tokens.revokeToken({ id: created.token!.id });
    await expectCode(laptop.accounts.whoAmI({}), Code.Unauthenticated, "revoked");

    // Someone else's tokens are not the user's business.
    const other = await createAccount(admin, server.httpUrl);
    await expectCode(u.tokens.listTokens({ accountId: other.id }), Code.PermissionDenied, "needs to be that account");
    await expectCode(u.tokens.createToken({ accountId: other.id, name: "x" }), Code.PermissionDenied);
    const theirs = (await admin.tokens.listTokens({ accountId: other.id })).tokens[0]!;
    await expectCode(u.tokens.revokeToken({ id: theirs.id }), Code.PermissionDenied);

    // Expired tokens stop working.
    const short = await admin.tokens.createToken({ accountId: user.id, name: "short", expiration: { case: "ttl", value: { seconds: 1n } } });
    await new Promise((r) => setTimeout(r, 1100));
    await expectCode(identityClients(server.httpUrl, short.secret).accounts.whoAmI({}), Code.Unauthenticated, "expired");
  });

  it("accounts: a password change needs the current one; a disabled account is refused; the last admin stays", async () => {
    const user = await createAccount(admin, server.httpUrl);
    await expectCode(
      user.clients.accounts.updateAccount({ account: { id: user.id, password: "new-password-123" }, updateMask: { paths: ["password"] } }),
      Code.InvalidArgument,
      "current_password: is required",
    );
    await user.clients.accounts.updateAccount({
      account: { id: user.id, password: "new-password-123" },
      updateMask: { paths: ["password"] },
      currentPassword: user.password!,
    });
    await expectCode(
      user.clients.accounts.updateAccount({ account: { id: user.id, disabled: true }, updateMask: { paths: ["disabled"] } }),
      Code.PermissionDenied,
    );

    await admin.accounts.updateAccount({ account: { id: user.id, disabled: true }, updateMask: { paths: ["disabled"] } });
    await expectCode(user.clients.accounts.whoAmI({}), Code.Unauthenticated, "disabled");

    const me = await admin.accounts.whoAmI({});
    await expectCode(admin.accounts.deleteAccount({ id: me.account!.id }), Code.FailedPrecondition, "last enabled account with the global admin role");
    await expectCode(admin.roleBindings.deleteRoleBinding({ id: me.roleBindings[0]!.id }), Code.FailedPrecondition, "last global admin");
    await expectCode(admin.accounts.createAccount({ account: { name: "robot.x", kind: AccountKind.ROBOT, password: "0123456789ab" } }), Code.InvalidArgument);
    await expectCode(admin.accounts.createAccount({ account: { name: "Bad Name", kind: AccountKind.USER } }), Code.InvalidArgument, "account.name");
    await expectCode(admin.accounts.createAccount({ account: { name: "admin", kind: AccountKind.USER } }), Code.AlreadyExists);
  });

  it("current_password is a password guess: throttled, counted with sign-ins per account and address, and audited", async () => {
    // A server of its own with shorter waits: its failures must not slow the other tests' calls from 127.0.0.1.
    // The waits are still far longer than an argon2 check, so a time over them is the throttle's.
    const throttled = await startAuthServer(kind, { auth: { throttle: { threshold: 3, baseMs: 400, maxMs: 5000 } } });
    try {
      const root = identityClients(throttled.httpUrl, ADMIN_TOKEN);
      const user = await createAccount(root, throttled.httpUrl);
      const change = (currentPassword: string) =>
        user.clients.accounts.updateAccount({ account: { id: user.id, password: "new-password-123" }, updateMask: { paths: ["password"] }, currentPassword });
      const signIn = (password: string) =>
        fetch(`${throttled.httpUrl}/auth/token?service=artifact-service`, { headers: { authorization: basic(user.name, password) } });
      const timed = async (call: () => Promise<unknown>): Promise<[unknown, number]> => {
        const started = performance.now();
        const result = await call().catch((err: unknown) => err);
        return [result, performance.now() - started];
      };

      // Asking without current_password is a malformed request, not a guess: nothing is counted.
      await expectCode(change(""), Code.InvalidArgument, "current_password: is required");
      // One failed sign-in and two wrong current passwords: 3 failures in a row, no wait yet.
      expect((await signIn("wrong-password-0")).status).toBe(401);
      await expectCode(change("wrong-password-1"), Code.PermissionDenied, "current_password: does not match");
      await expectCode(change("wrong-password-2"), Code.PermissionDenied, "current_password: does not match");
      // From the threshold on, a guess waits before it is checked, whichever door it comes through.
      const [third, thirdMs] = await timed(() => change("wrong-password-3"));
      expect(third).toBeInstanceOf(ConnectError);
      expect((third as ConnectError).code).toBe(Code.PermissionDenied);
      expect(thirdMs).toBeGreaterThanOrEqual(390);
      const [signedIn, signInMs] = await timed(() => signIn("wrong-password-4"));
      expect((signedIn as Response).status).toBe(401);
      expect(signInMs).toBeGreaterThanOrEqual(790);
      // The right password waits as a sign-in's does (the throttle delays, it does not lock out), then works.
      const [right, rightMs] = await timed(() => change(user.password!));
      expect(right).not.toBeInstanceOf(Error);
      expect(rightMs).toBeGreaterThanOrEqual(1590);

      const events = await root.audit.listAuditEvents({ action: "auth.sign_in", orderBy: "event_time", pageSize: 100 });
      expect(events.auditEvents.map((e) => [AuditOutcome[e.outcome], e.actorName, e.detail])).toEqual([
        ["FAILURE", user.name, "password: wrong password"],
        ["FAILURE", user.name, "current_password: wrong password"],
        ["FAILURE", user.name, "current_password: wrong password"],
        ["FAILURE", user.name, "current_password: wrong password (delayed 400 ms)"],
        ["FAILURE", user.name, "password: wrong password (delayed 800 ms)"],
      ]);
      expect(events.auditEvents.every((e) => e.actorId === user.id && e.clientAddress === "127.0.0.1" && e.requestId !== "")).toBe(true);
      // The success ended the account's streak, as a sign-in's does; the address keeps its count.
      const rows: unknown = await throttled.database.db.execute("select key, failures from auth_throttle order by key");
      const list = (Array.isArray(rows) ? rows : ((rows as { rows?: unknown[] }).rows ?? [])) as { key: string; failures: number }[];
      expect(list.map((r) => [r.key, Number(r.failures)])).toEqual([["address:127.0.0.1", 5]]);
      // The new password is the account's now.
      expect((await signIn("new-password-123")).status).toBe(200);
    } finally {
      await throttled.stop();
    }
  });

  it("a registry admin binds roles there and nowhere else", async () => {
    const a = await catalog();
    const b = await catalog();
    const lead = await createAccount(admin, server.httpUrl);
    const member = await createAccount(admin, server.httpUrl);
    await bindRole(admin, lead.id, "admin", { registryId: a.registry.id });
    const binding = await bindRole(lead.clients, member.id, "writer", { namespaceId: a.team.id });
    expect(binding).toMatchObject({ accountName: member.name, role: Role.WRITER, scope: RoleScope.NAMESPACE, scopeId: a.team.id });
    await expectCode(bindRole(lead.clients, member.id, "writer", { namespaceId: b.team.id }), Code.PermissionDenied, "needs admin");
    await expectCode(bindRole(lead.clients, member.id, "admin", { global: true }), Code.PermissionDenied, "needs admin at global scope");
    const seen = await lead.clients.roleBindings.listRoleBindings({});
    expect(new Set(seen.roleBindings.map((r) => r.accountId))).toEqual(new Set([lead.id, member.id]));
    // The member sees its own bindings only.
    const own = await member.clients.roleBindings.listRoleBindings({});
    expect(own.roleBindings.map((r) => r.id)).toEqual([binding.id]);
    await lead.clients.roleBindings.deleteRoleBinding({ id: binding.id });
  });

  it("records writes, role changes, tokens and failed sign-ins in the audit log, with actor, request id and address", async () => {
    const c = await catalog();
    const user = await createAccount(admin, server.httpUrl);
    await bindRole(admin, user.id, "writer", { namespaceId: c.team.id });
    await user.clients.tags.updateTag({ tag: { id: c.teamTag.id, digest: digestOf(3) }, updateMask: { paths: ["digest"] } });
    await expectCode(user.clients.tags.deleteTag({ id: c.teamTag.id }), Code.PermissionDenied);
    await expectCode(identityClients(server.httpUrl, "art_not-a-real-token-at-all-0000000000000000").accounts.whoAmI({}), Code.Unauthenticated);

    const byUser = await admin.audit.listAuditEvents({ actor: user.name, pageSize: 100 });
    const summary = byUser.auditEvents.map((e) => [e.action, AuditOutcome[e.outcome]]);
    // Another digest on an existing tag is a move.
    expect(summary).toEqual(
      expect.arrayContaining([
        ["tag.move", "SUCCESS"],
        ["tag.delete", "DENIED"],
      ]),
    );
    const update = byUser.auditEvents.find((e) => e.action === "tag.move")!;
    expect(update).toMatchObject({ actorId: user.id, clientAddress: "127.0.0.1" });
    expect(update.requestId).not.toBe("");
    expect(update.detail).toContain(digestOf(3));

    const roleEvents = await admin.audit.listAuditEvents({ action: "role_binding.create", resource: user.name });
    expect(roleEvents.auditEvents.map((e) => [e.actorName, e.detail])).toEqual([["admin", `writer on namespace ${c.registry.name}/${c.team.name}`]]);
    const tokens = await admin.audit.listAuditEvents({ action: "token.create", resource: `${user.name}/test` });
    expect(tokens.auditEvents.map((e) => [e.actorName, e.resourceType])).toEqual([["admin", "token"]]);
    const own = await user.clients.tokens.createToken({ name: "short-lived" });
    await user.clients.tokens.revokeToken({ id: own.token!.id });
    const revoked = await admin.audit.listAuditEvents({ action: "token.revoke", resource: own.token!.id });
    expect(revoked.auditEvents.map((e) => [e.actorName, e.resourceType, AuditOutcome[e.outcome]])).toEqual([[user.name, "token", "SUCCESS"]]);
    expect(revoked.auditEvents[0]!.requestId).not.toBe("");
    const failures = await admin.audit.listAuditEvents({ action: "auth.sign_in", pageSize: 1000 });
    expect(failures.auditEvents.some((e) => e.outcome === AuditOutcome.FAILURE && e.detail.includes("unknown token") && e.clientAddress === "127.0.0.1")).toBe(
      true,
    );

    // Keyset pages and time filters.
    const page = await admin.audit.listAuditEvents({ pageSize: 2 });
    expect(page.auditEvents).toHaveLength(2);
    const next = await admin.audit.listAuditEvents({ pageSize: 2, pageToken: page.nextPageToken });
    expect(next.auditEvents.map((e) => e.id)).not.toContain(page.auditEvents[0]!.id);
    const future = await admin.audit.listAuditEvents({ startTime: { seconds: BigInt(Math.floor(Date.now() / 1000) + 3600), nanos: 0 } });
    expect(future.totalSize).toBe(0);
    await expectCode(admin.audit.listAuditEvents({ pageToken: "forged" }), Code.InvalidArgument);
  });

  it("serves REST with a Bearer token, and 401 without", async () => {
    const ok = await fetch(`${server.httpUrl}/v1/whoami`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { account: { name: string } }).account.name).toBe("admin");
    const refused = await fetch(`${server.httpUrl}/v1/accounts`);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ code: "unauthenticated" });
    const user = await createAccount(admin, server.httpUrl);
    const denied = await fetch(`${server.httpUrl}/v1/accounts`, { headers: { authorization: `Bearer ${user.token}` } });
    expect(denied.status).toBe(403);
    const body = (await denied.json()) as { code: string; message: string };
    expect(body.code).toBe("permission_denied");
    expect(body.message).toContain("needs admin at global scope");
  });
});
