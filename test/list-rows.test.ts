// Every list shows a row exactly as its get does, on both databases. A page is read from the
// database another way than a single row (one JSON value per page, src/store/listing.ts), so each
// listed resource is compared with its get field by field: with text that JSON has to escape
// (quotes, backslashes, control characters, emoji, combining marks, U+2028), with optional
// fields set and unset (timestamps, scopes, JSON rules), and in the page's order.
import { createClient, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountKind } from "../gen/artifact/v1/account_pb.js";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import type { KeepRule } from "../gen/artifact/v1/retention_pb.js";
import { RoleScope, Role } from "../gen/artifact/v1/role_binding_pb.js";
import { WebhookService } from "../gen/artifact/v1/webhook_pb.js";
import { digestOf, unique } from "./support/clients.js";
import { databaseKinds } from "./support/database.js";
import { ADMIN_TOKEN, identityClients, startAuthServer, type IdentityClients } from "./support/identity.js";
import { callTransport, type TestServer } from "./support/server.js";

/** Free text a description may hold (no NUL, no lone surrogate), much of which JSON escapes. */
const TEXT = `quote " backslash \\ slash / tab\t new\nline \u0001 \u001f del \u007f emoji 🐳 e\u0301 שלום sep \u2028 \u2029 end`;

const days = (n: number) => ({ seconds: BigInt(n * 86_400) });
const keep = (...rules: KeepRule[]): KeepRule => ({ kind: { case: "anyOf", value: { rules } } }) as KeepRule;
const mostRecent = (count: number, tagPattern: string): KeepRule => ({ kind: { case: "mostRecent", value: { count, tagPattern } } }) as KeepRule;
const pushedWithin = (n: number): KeepRule => ({ kind: { case: "pushedWithin", value: { duration: days(n) } } }) as KeepRule;

describe.each(databaseKinds())("lists show rows as gets do, on %s", (kind) => {
  let server: TestServer;
  let admin: IdentityClients;
  let webhooks: Client<typeof WebhookService>;

  beforeAll(async () => {
    server = await startAuthServer(kind);
    admin = identityClients(server.httpUrl, ADMIN_TOKEN);
    webhooks = createClient(WebhookService, callTransport(server));
  });
  afterAll(() => server?.stop());

  /** A registry (a REMOTE one's tags may name any digest), namespace and repository with TEXT descriptions. */
  async function hierarchy(registryKind: RegistryKind) {
    const url = registryKind === RegistryKind.REMOTE ? "http://127.0.0.1:9" : "";
    const registry = await admin.registries.createRegistry({ registry: { name: unique("rows"), kind: registryKind, url, description: TEXT } });
    const namespace = await admin.namespaces.createNamespace({ namespace: { registryId: registry.id, name: "team", description: TEXT } });
    const repository = await admin.repositories.createRepository({ repository: { namespaceId: namespace.id, name: "app", description: `${TEXT} ✓` } });
    return { registry, namespace, repository };
  }

  it("the catalog: registries, namespaces, repositories, tags (and the searches across them)", async () => {
    const { registry, namespace, repository } = await hierarchy(RegistryKind.REMOTE);
    expect(registry.description).toBe(TEXT);
    const byId = <T extends { id: string }>(items: T[], id: string) => items.find((x) => x.id === id);

    const registries = await admin.registries.listRegistries({ query: registry.name, pageSize: 1000 });
    expect(byId(registries.registries, registry.id)).toEqual(await admin.registries.getRegistry({ id: registry.id }));
    const namespaces = await admin.namespaces.listNamespaces({ registryId: registry.id });
    expect(namespaces.namespaces).toEqual([await admin.namespaces.getNamespace({ id: namespace.id })]);
    const repositories = await admin.repositories.listRepositories({ namespaceId: namespace.id });
    expect(repositories.repositories).toEqual([await admin.repositories.getRepository({ id: repository.id })]);
    const found = await admin.repositories.searchRepositories({ query: `${registry.name}/team/app` });
    expect(found.repositories).toEqual(repositories.repositories);

    // Tags with names that sort byte-wise, not as a collation would: the page keeps that order.
    const names = ["Z", "a", "a.b", "a_b", "a-b", "_a", "1.0", "1.10", "1.9", "A"];
    for (const [i, name] of names.entries()) await admin.tags.createTag({ tag: { repositoryId: repository.id, name, digest: digestOf(i + 1) } });
    const gets = await Promise.all((await admin.tags.listTags({ repositoryId: repository.id, pageSize: 3 })).tags.map((t) => admin.tags.getTag({ id: t.id })));
    const byName = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const all: unknown[] = [];
    let pageToken = "";
    do {
      const page = await admin.tags.listTags({ repositoryId: repository.id, pageSize: 4, pageToken });
      all.push(...page.tags);
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(all.map((t) => (t as { name: string }).name)).toEqual(byName);
    expect(all.slice(0, 3)).toEqual(gets);
    for (const tag of all as { id: string }[]) expect(tag).toEqual(await admin.tags.getTag({ id: tag.id }));
    const descending = await admin.tags.listTags({ repositoryId: repository.id, orderBy: "name desc", pageSize: 100 });
    expect(descending.tags.map((t) => t.name)).toEqual([...byName].reverse());
    // A search matches regardless of case (ILIKE), in the full name's byte order.
    const searched = await admin.tags.searchTags({ query: `${registry.name}/team/app:a`, pageSize: 100 });
    expect(searched.tags).toEqual((all as { name: string }[]).filter((t) => t.name.toLowerCase().startsWith("a")));
  });

  it("identity: accounts, tokens (with and without an expiry, used and revoked), role bindings", async () => {
    const name = unique("rows").replace(/-/g, ".");
    const account = await admin.accounts.createAccount({ account: { name, kind: AccountKind.ROBOT, description: TEXT } });
    const accounts = await admin.accounts.listAccounts({ query: name });
    expect(accounts.accounts).toEqual([await admin.accounts.getAccount({ id: account.id })]);

    const lasting = await admin.tokens.createToken({ accountId: account.id, name: `lasting "quoted" \\ 🐳 e\u0301 \u2028` });
    const expiring = await admin.tokens.createToken({ accountId: account.id, name: "expiring", expiration: { case: "ttl", value: { seconds: 3600n } } });
    const revoked = await admin.tokens.createToken({ accountId: account.id, name: "revoked" });
    await admin.tokens.revokeToken({ id: revoked.token!.id });
    const tokens = await admin.tokens.listTokens({ accountId: account.id, pageSize: 100 });
    expect(tokens.tokens).toHaveLength(3);
    for (const token of tokens.tokens) expect(token).toEqual(await admin.tokens.getToken({ id: token.id }));
    const listed = (id: string) => tokens.tokens.find((t) => t.id === id)!;
    expect(listed(lasting.token!.id).expireTime).toBeUndefined();
    expect(listed(expiring.token!.id).expireTime).toBeDefined();
    expect(listed(revoked.token!.id).revokeTime).toBeDefined();

    const { registry } = await hierarchy(RegistryKind.HOSTED);
    const binding = await admin.roleBindings.createRoleBinding({
      roleBinding: { accountId: account.id, role: Role.READER, scope: RoleScope.REGISTRY, scopeId: registry.id },
    });
    const bindings = await admin.roleBindings.listRoleBindings({ accountId: account.id });
    expect(bindings.roleBindings).toEqual([await admin.roleBindings.getRoleBinding({ id: binding.id })]);
  });

  it("policies: immutability rules, retention policies (their JSON rules), webhooks", async () => {
    const { registry, namespace, repository } = await hierarchy(RegistryKind.HOSTED);
    const rule = await admin.immutabilityRules.createImmutabilityRule({
      immutabilityRule: { scope: { case: "namespaceId", value: namespace.id }, tagPattern: "v[0-9]+\\..*", description: TEXT },
    });
    const rules = await admin.immutabilityRules.listImmutabilityRules({ namespaceId: namespace.id });
    expect(rules.immutabilityRules).toEqual([await admin.immutabilityRules.getImmutabilityRule({ id: rule.id })]);

    const policy = await admin.retention.createRetentionPolicy({
      retentionPolicy: {
        scope: { case: "repositoryId", value: repository.id },
        keep: keep(mostRecent(3, 'release-\\d+|"quoted"'), pushedWithin(7)),
        untaggedGrace: { seconds: 3600n },
        description: TEXT,
      },
    });
    const policies = await admin.retention.listRetentionPolicies({ repositoryId: repository.id });
    expect(policies.retentionPolicies).toEqual([await admin.retention.getRetentionPolicy({ id: policy.id })]);
    expect(policies.retentionPolicies[0]!.keep).toEqual(policy.keep);

    const webhook = await webhooks.createWebhook({
      webhook: { registryId: registry.id, url: 'http://127.0.0.1:9/hook?a=1&b="2"', secret: "s3cret-value-long-enough", eventTypes: [] },
    });
    const hooks = await webhooks.listWebhooks({ registryId: registry.id });
    expect(hooks.webhooks).toEqual([await webhooks.getWebhook({ id: webhook.id })]);
  });
});
