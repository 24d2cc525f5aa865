// Names → resources, in this one module. The API addresses resources by id; people type names.
// Until the API can look names up itself, every lookup is a List call filtered by `query` (a
// case-insensitive substring) and the exact name picked from the answer, so moving to name-based
// RPCs later changes this file only. A resource the credential may not read is not listed, and
// so is "not found" here, as on the server.
import type { ArtifactClient } from "../../client/node.js";
import type { Account } from "../../../gen/artifact/v1/account_pb.js";
import type { Namespace } from "../../../gen/artifact/v1/namespace_pb.js";
import type { Registry } from "../../../gen/artifact/v1/registry_pb.js";
import type { Repository } from "../../../gen/artifact/v1/repository_pb.js";
import type { Tag } from "../../../gen/artifact/v1/tag_pb.js";
import type { Token } from "../../../gen/artifact/v1/token_pb.js";
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

export class Resolver {
  constructor(private readonly client: ArtifactClient) {}

  async registry(name: string): Promise<Registry> {
    const found = await exact(async (pageToken) => {
      const r = await this.client.registries.listRegistries({ query: name, pageSize: PAGE, pageToken });
      return { items: r.registries, next: r.nextPageToken };
    }, name);
    if (!found) throw notFoundError(`registry ${JSON.stringify(name)} not found`);
    return found;
  }

  async namespace(registryName: string, namespaceName: string): Promise<{ registry: Registry; namespace: Namespace }> {
    const registry = await this.registry(registryName);
    const found = await exact(async (pageToken) => {
      const r = await this.client.namespaces.listNamespaces({ registryId: registry.id, query: namespaceName, pageSize: PAGE, pageToken });
      return { items: r.namespaces, next: r.nextPageToken };
    }, namespaceName);
    if (!found) throw notFoundError(`namespace ${JSON.stringify(`${registryName}/${namespaceName}`)} not found`);
    return { registry, namespace: found };
  }

  async repository(name: ImageName): Promise<RepositoryPath> {
    const { registry, namespace } = await this.namespace(name.registry, name.namespace);
    const found = await exact(async (pageToken) => {
      const r = await this.client.repositories.listRepositories({ namespaceId: namespace.id, query: name.repository, pageSize: PAGE, pageToken });
      return { items: r.repositories, next: r.nextPageToken };
    }, name.repository);
    if (!found) throw notFoundError(`repository ${JSON.stringify(imagePath(name))} not found`);
    return { registry, namespace, repository: found };
  }

  /** The tag of that name in the repository, or undefined. */
  async tag(repositoryId: string, name: string): Promise<Tag | undefined> {
    return exact(async (pageToken) => {
      const r = await this.client.tags.listTags({ repositoryId, query: name, pageSize: PAGE, pageToken });
      return { items: r.tags, next: r.nextPageToken };
    }, name);
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
