// Names → resources, in this one module. People type names; the API looks them up in one call each
// (Lookup{Registry,Namespace,Repository,Tag}). Accounts and tokens have no lookup: a List call
// filtered by `query` and the exact name picked from the answer. A resource the credential may not
// read is "not found", as on the server.
import type { ArtifactClient } from "../../client/node.js";
import type { Account } from "../../../gen/artifact/v1/account_pb.js";
import type { Namespace } from "../../../gen/artifact/v1/namespace_pb.js";
import type { Registry } from "../../../gen/artifact/v1/registry_pb.js";
import type { Repository } from "../../../gen/artifact/v1/repository_pb.js";
import type { Tag } from "../../../gen/artifact/v1/tag_pb.js";
import type { Token } from "../../../gen/artifact/v1/token_pb.js";
import { Code, ConnectError } from "@connectrpc/connect";
import { notFoundError, usageError } from "./exit.js";
import { imagePath, type ImageName } from "./image-ref.js";

/** The largest page the API serves: lookups rarely need a second one. */
const PAGE = 1000;

interface Page<T> {
  items: T[];
  next: string;
}

/** Every item of a paged list, page by page. */
export async function* allPages<T>(list: (pageToken: string) => Promise<Page<T>>): AsyncGenerator<T> {
  let token = "";
  do {
    const page = await list(token);
    yield* page.items;
    token = page.next;
  } while (token !== "");
}

async function exact<T extends { name: string }>(list: (pageToken: string) => Promise<Page<T>>, name: string): Promise<T | undefined> {
  for await (const item of allPages(list)) if (item.name === name) return item;
  return undefined;
}

export interface RepositoryPath {
  registry: Registry;
  namespace: Namespace;
  repository: Repository;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Where a policy or a webhook is set, as its request's `scope` oneof (or its two id fields) names it. */
export type ScopeRef = { case: "registryId"; value: string } | { case: "namespaceId"; value: string } | { case: "repositoryId"; value: string };

/** How a scope is typed: `<registry>`, `<registry>/<namespace>`, `<registry>/<namespace>/<repository...>`. */
export const SCOPE_SYNTAX = "<registry>[/<namespace>[/<repository>]]";

/**
 * A policy List request's scope fields (immutability rules, retention policies): the scope's id in
 * its field, and `inherited` (the policies of the scopes around it too) unless `own` or a registry.
 */
export function policyListFilter(scope: ScopeRef | undefined, own: boolean) {
  if (own && scope === undefined) throw usageError("--own needs a scope");
  return {
    registryId: scope?.case === "registryId" ? scope.value : "",
    namespaceId: scope?.case === "namespaceId" ? scope.value : "",
    repositoryId: scope?.case === "repositoryId" ? scope.value : "",
    inherited: scope !== undefined && scope.case !== "registryId" && !own,
  };
}

export class Resolver {
  constructor(private readonly client: ArtifactClient) {}

  /**
   * The scope a name names: one component a registry, two a namespace, more a repository (when
   * `deepest` allows it; webhooks stop at namespaces).
   */
  async scope(name: string, deepest: "namespace" | "repository" = "repository"): Promise<ScopeRef> {
    const parts = name.split("/");
    const syntax = deepest === "repository" ? SCOPE_SYNTAX : "<registry>[/<namespace>]";
    if (parts.some((p) => p === "")) throw usageError(`scope ${JSON.stringify(name)}: empty path component; expected ${syntax}`);
    if (parts.length === 1) return { case: "registryId", value: (await this.registry(parts[0]!)).id };
    if (parts.length === 2) return { case: "namespaceId", value: (await this.namespace(parts[0]!, parts[1]!)).namespace.id };
    if (deepest === "namespace") throw usageError(`scope ${JSON.stringify(name)}: expected ${syntax}`);
    const { repository } = await this.repository({ registry: parts[0]!, namespace: parts[1]!, repository: parts.slice(2).join("/") });
    return { case: "repositoryId", value: repository.id };
  }

  async registry(name: string): Promise<Registry> {
    return found(this.client.registries.lookupRegistry({ name }), `registry ${JSON.stringify(name)} not found`);
  }

  async namespace(registryName: string, namespaceName: string): Promise<{ registry: Registry; namespace: Namespace }> {
    // Parent first, one after the other: what is missing is named, the outermost first.
    const full = `${registryName}/${namespaceName}`;
    const registry = await this.registry(registryName);
    const namespace = await found(this.client.namespaces.lookupNamespace({ name: full }), `namespace ${JSON.stringify(full)} not found`);
    return { registry, namespace };
  }

  async repository(name: ImageName): Promise<RepositoryPath> {
    const { registry, namespace } = await this.namespace(name.registry, name.namespace);
    const repository = await found(
      this.client.repositories.lookupRepository({ name: imagePath(name) }),
      `repository ${JSON.stringify(imagePath(name))} not found`,
    );
    return { registry, namespace, repository };
  }

  /** The tag of that name in the repository (`<image>:<tag>`), or undefined. */
  async tag(image: string, name: string): Promise<Tag | undefined> {
    try {
      return await this.client.tags.lookupTag({ name: `${image}:${name}` });
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.NotFound) return undefined;
      throw err;
    }
  }

  async account(name: string): Promise<Account> {
    const found = await exact(async (pageToken) => {
      const r = await this.client.accounts.listAccounts({ query: name, pageSize: PAGE, pageToken });
      return { items: r.accounts, next: r.nextPageToken };
    }, name);
    if (!found) throw notFoundError(`account ${JSON.stringify(name)} not found`);
    return found;
  }

  /** A token by id, or by name when exactly one of the caller's visible tokens has it. */
  async token(idOrName: string): Promise<Token> {
    if (UUID.test(idOrName)) return this.client.tokens.getToken({ id: idOrName.toLowerCase() });
    const matches: Token[] = [];
    for await (const t of allPages(async (pageToken) => {
      const r = await this.client.tokens.listTokens({ query: idOrName, pageSize: PAGE, pageToken });
      return { items: r.tokens, next: r.nextPageToken };
    })) {
      if (t.name === idOrName && !t.revokeTime) matches.push(t);
    }
    if (matches.length === 0) throw notFoundError(`no active token named ${JSON.stringify(idOrName)} (give its id to name a revoked one)`);
    if (matches.length > 1) {
      throw usageError(
        `${matches.length} tokens are named ${JSON.stringify(idOrName)}: give the id of one (${matches.map((t) => `${t.id} of ${t.accountName}`).join(", ")})`,
      );
    }
    return matches[0]!;
  }

  /** Namespace id → its registry's and its own name, for every namespace the caller may see. */
  async namespacePaths(): Promise<Map<string, { registry: string; namespace: string }>> {
    const registries = new Map<string, string>();
    for await (const r of allPages(async (pageToken) => {
      const page = await this.client.registries.listRegistries({ pageSize: PAGE, pageToken });
      return { items: page.registries, next: page.nextPageToken };
    })) {
      registries.set(r.id, r.name);
    }
    const paths = new Map<string, { registry: string; namespace: string }>();
    for await (const n of allPages(async (pageToken) => {
      const page = await this.client.namespaces.listNamespaces({ pageSize: PAGE, pageToken });
      return { items: page.namespaces, next: page.nextPageToken };
    })) {
      paths.set(n.id, { registry: registries.get(n.registryId) ?? n.registryId, namespace: n.name });
    }
    return paths;
  }
}

/** A lookup's answer; NOT_FOUND (the name is unknown, or not readable with this credential) → `message`. */
async function found<T>(lookup: Promise<T>, message: string): Promise<T> {
  try {
    return await lookup;
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.NotFound) throw notFoundError(message);
    throw err;
  }
}
