import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { expect } from "vitest";
import { NamespaceService } from "../../gen/artifact/v1/namespace_pb.js";
import { RegistryKind, RegistryService } from "../../gen/artifact/v1/registry_pb.js";
import { RepositoryService } from "../../gen/artifact/v1/repository_pb.js";
import { TagService } from "../../gen/artifact/v1/tag_pb.js";

export interface Clients {
  registries: Client<typeof RegistryService>;
  namespaces: Client<typeof NamespaceService>;
  repositories: Client<typeof RepositoryService>;
  tags: Client<typeof TagService>;
}

export function catalogClients(transport: Transport): Clients {
  return {
    registries: createClient(RegistryService, transport),
    namespaces: createClient(NamespaceService, transport),
    repositories: createClient(RepositoryService, transport),
    tags: createClient(TagService, transport),
  };
}

let counter = 0;
/** A name no other test uses (tests share one server per file). */
export function unique(prefix: string): string {
  return `${prefix}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 7)}`;
}

/**
 * What examples/catalog.ts prints (the package's own copy prints the same): it created a HOSTED
 * registry → namespace → repository, pushed and tagged an image, listed and deleted it all.
 * Returns the registry's name, for checking that it is gone.
 */
export function expectCatalogExampleOutput(stdout: string): string {
  const lines = stdout.trim().split("\n");
  const name = /^created (example-[a-z0-9]+)\/team\/hello$/.exec(lines[0] ?? "")?.[1];
  expect(name, stdout).toBeDefined();
  expect(stdout).toMatch(/^tagged 1\.0 -> sha256:[0-9a-f]{64} \(application\/vnd\.oci\.image\.manifest\.v1\+json, \d+ bytes\)$/m);
  expect(stdout).toMatch(/^ {6}tag 1\.0 sha256:[0-9a-f]{64}$/m);
  expect(lines.at(-1)).toBe(`deleted ${name}`);
  return name!;
}

export const digestOf = (n: number) => `sha256:${n.toString(16).padStart(64, "0")}`;

/**
 * registry → namespace → repository, fresh names. The registry is REMOTE (its upstream is never
 * contacted here) because there tags are free records; a HOSTED registry's tags must name
 * manifests that were pushed.
 */
export async function createHierarchy(c: Clients) {
  const registry = await c.registries.createRegistry({
    registry: { name: unique("reg"), kind: RegistryKind.REMOTE, url: "http://127.0.0.1:9" },
  });
  const namespace = await c.namespaces.createNamespace({ namespace: { registryId: registry.id, name: unique("team").replace(/-/g, ".") } });
  const repository = await c.repositories.createRepository({ repository: { namespaceId: namespace.id, name: "app/web" } });
  return { registry, namespace, repository };
}

/** Asserts that `call` fails with `code`, and that the message mentions `mentions` when given. */
export async function expectCode(call: Promise<unknown>, code: Code, mentions?: string | RegExp): Promise<ConnectError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${Code[code]}, the call succeeded`).toBeInstanceOf(ConnectError);
  const ce = err as ConnectError;
  expect(Code[ce.code], ce.rawMessage).toBe(Code[code]);
  if (mentions !== undefined) expect(ce.rawMessage).toMatch(mentions);
  return ce;
}
