// The typed client (src/client): the Node entry over every protocol, the browser entry (fetch,
// connect-web) over Connect and gRPC-Web, the package's "exports" map choosing between them,
// and examples/catalog.ts run as a child process against a real server, as a user would.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { Code, type Interceptor } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import { createArtifactClient as browserClient } from "../src/client/browser.js";
import { createArtifactClient as nodeClient, type ArtifactClient } from "../src/client/node.js";
import { ARTIFACT_SERVICES } from "../src/client/services.js";
import { apiServices } from "../src/api/routes.js";
import { packageRoot } from "../src/paths.js";
import { digestOf, expectCatalogExampleOutput, expectCode, unique } from "./support/clients.js";
import { ADMIN_TOKEN } from "./support/credentials.js";
import { databaseKinds } from "./support/database.js";
import { startTestServer, type TestServer } from "./support/server.js";

const run = promisify(execFile);

/** registry → namespace → repository → tag → list, through one ArtifactClient. */
async function roundTrip(client: ArtifactClient) {
  const registry = await client.registries.createRegistry({
    // REMOTE: its tags are catalog records (a HOSTED tag needs a pushed manifest; the example does that).
    registry: { name: unique("client"), kind: RegistryKind.REMOTE, url: "http://127.0.0.1:9" },
  });
  const namespace = await client.namespaces.createNamespace({ namespace: { registryId: registry.id, name: "team" } });
  const repository = await client.repositories.createRepository({ repository: { namespaceId: namespace.id, name: "app/web" } });
  const tag = await client.tags.createTag({ tag: { repositoryId: repository.id, name: "1.0", digest: digestOf(42), sizeBytes: 10n } });
  const listed = await client.tags.listTags({ repositoryId: repository.id });
  expect(listed.tags.map((t) => t.id)).toEqual([tag.id]);
  expect((await client.repositories.getRepository({ id: repository.id })).name).toBe("app/web");
  await expectCode(client.registries.getRegistry({ id: "00000000-0000-4000-8000-000000000000" }), Code.NotFound);
  // A server stream through the same client: the replay of this registry's events has the tag's.
  let batches = 0;
  for await (const batch of client.events.watchEvents({ afterPosition: 0n, registryId: registry.id })) {
    expect(batch.events.map((e) => [e.type, e.subject])).toEqual([["dev.artifact.tag.moved", `${registry.name}/team/app/web`]]);
    batches++;
    break; // ends the stream (the watch would go on live)
  }
  expect(batches).toBe(1);
  const gc = await client.garbageCollection.runGarbageCollection({ dryRun: true });
  expect(gc.dryRun).toBe(true);
  await client.registries.deleteRegistry({ id: registry.id, force: true });
}

describe("typed client's coverage", () => {
  it("has a client for every artifact.v1 service the server offers, and none it does not", () => {
    const offered = apiServices.map((s) => s.typeName).filter((name) => name.startsWith("artifact.v1."));
    expect(
      Object.values(ARTIFACT_SERVICES)
        .map((s) => s.typeName)
        .sort(),
    ).toEqual(offered.sort());
  });
});

describe.each(databaseKinds())("typed client on %s", (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(kind);
  });
  afterAll(() => server?.stop());

  describe("Node entry (connect-node)", () => {
    it.each([
      ["connect (JSON, HTTP/1.1, the default)", {}],
      ["connect (binary, HTTP/2, GET for reads)", { protocol: "connect", useBinaryFormat: true, httpVersion: "2", useHttpGet: true }],
      ["grpc", { protocol: "grpc" }],
      ["grpc-web", { protocol: "grpc-web" }],
    ] as const)("works over %s", async (_name, options) => {
      await roundTrip(nodeClient(server.httpUrl, { ...options, token: ADMIN_TOKEN }));
    });

    it("sends the token as a Bearer header (a function is asked on every call); without one, calls are anonymous", async () => {
      let asked = 0;
      const viaFunction = nodeClient(server.httpUrl, { protocol: "grpc", token: () => (asked++, Promise.resolve(ADMIN_TOKEN)) });
      expect((await viaFunction.accounts.whoAmI({})).account?.name).toBe("admin");
      await viaFunction.registries.listRegistries({});
      expect(asked).toBe(2);
      const anonymous = nodeClient(server.httpUrl);
      await expectCode(anonymous.registries.createRegistry({ registry: { name: unique("anon"), kind: RegistryKind.HOSTED } }), Code.Unauthenticated, /sign in/);
      await expectCode(nodeClient(server.httpUrl, { token: "art_not-a-token" }).registries.listRegistries({}), Code.Unauthenticated);
      expect(() => nodeClient(server.httpUrl, { token: "" })).toThrow(/token must be a non-empty API token/);
      expect(() => nodeClient(server.httpUrl, { token: "two words" })).toThrow(/token must be a non-empty API token/);
    });

    it("sends what the options say: interceptors run, the default deadline travels as a header", async () => {
      const seen: { protocol: string; timeout: string | null; method: string }[] = [];
      const record: Interceptor = (next) => async (req) => {
        const res = await next(req);
        seen.push({
          protocol: req.header.get("content-type") ?? "",
          timeout: req.header.get("grpc-timeout") ?? req.header.get("connect-timeout-ms"),
          method: req.requestMethod,
        });
        return res;
      };
      const client = nodeClient(`${server.grpcUrl}/`, { protocol: "grpc", token: ADMIN_TOKEN, interceptors: [record], defaultTimeoutMs: 5_000 });
      await client.registries.listRegistries({});
      expect(seen).toEqual([{ protocol: "application/grpc+proto", timeout: expect.stringMatching(/^\d+m$/) as unknown, method: "POST" }]);
    });

    it("refuses a bad base URL or protocol with a message naming it", () => {
      expect(() => nodeClient("localhost:8080")).toThrow(/must be http:\/\/ or https:\/\//);
      expect(() => nodeClient("not a url")).toThrow(/"not a url" is not a URL/);
      expect(() => nodeClient(server.httpUrl, { protocol: "rest" as never })).toThrow(/protocol "rest" is not one of/);
    });
  });

  describe("browser entry (connect-web over fetch)", () => {
    it.each([
      ["connect", { protocol: "connect" }],
      ["connect with GET for reads", { protocol: "connect", useHttpGet: true }],
      ["grpc-web", { protocol: "grpc-web" }],
    ] as const)("works over %s", async (_name, options) => {
      const methods: string[] = [];
      const recording: typeof fetch = (input, init) => {
        methods.push(init?.method ?? "GET");
        return fetch(input, init);
      };
      await roundTrip(browserClient(server.httpUrl, { ...options, token: ADMIN_TOKEN, fetch: recording }));
      expect(methods.length).toBeGreaterThan(0);
      expect(methods.includes("GET")).toBe("useHttpGet" in options);
    });

    it("refuses gRPC, which browsers cannot speak (no access to HTTP trailers)", () => {
      expect(() => browserClient(server.httpUrl, { protocol: "grpc" })).toThrow(/use "grpc-web" or "connect"/);
    });
  });

  it.each(["connect", "grpc", "grpc-web"])("examples/catalog.ts runs against the server over %s", async (protocol) => {
    const { stdout } = await run(
      process.execPath,
      ["--conditions=artifact-source", "--import", "tsx", join(packageRoot, "examples/catalog.ts"), server.httpUrl, protocol],
      { cwd: packageRoot, timeout: 60_000, env: { ...process.env, ARTIFACT_TOKEN: ADMIN_TOKEN } },
    );
    const name = expectCatalogExampleOutput(stdout);
    // It cleaned up after itself.
    const left = await nodeClient(server.httpUrl, { token: ADMIN_TOKEN }).registries.listRegistries({ query: name });
    expect(left.registries).toEqual([]);
  });
});

describe('package.json "exports"', () => {
  const resolve = async (specifier: string, conditions: string[]) => {
    const { stdout } = await run(
      process.execPath,
      [...conditions.map((c) => `--conditions=${c}`), "--input-type=module", "-e", `console.log(import.meta.resolve(${JSON.stringify(specifier)}))`],
      { cwd: packageRoot },
    );
    return stdout.trim().replace(`file://${packageRoot}`, "");
  };

  it("maps artifact-service/client to the Node entry under Node and to the browser entry for bundlers", async () => {
    expect(await resolve("artifact-service/client", [])).toBe("/dist/src/client/node.js");
    expect(await resolve("artifact-service/client", ["browser"])).toBe("/dist/src/client/browser.js");
    expect(await resolve("artifact-service/client/browser", [])).toBe("/dist/src/client/browser.js");
    expect(await resolve("artifact-service/client/node", [])).toBe("/dist/src/client/node.js");
    expect(await resolve("artifact-service/gen/artifact/v1/tag_pb.js", [])).toBe("/dist/gen/artifact/v1/tag_pb.js");
  });

  it("maps to the TypeScript sources under the artifact-source condition (how the example runs in this repository)", async () => {
    expect(await resolve("artifact-service/client", ["artifact-source"])).toBe("/src/client/node.ts");
    expect(await resolve("artifact-service/client", ["browser", "artifact-source"])).toBe("/src/client/browser.ts");
    expect(await resolve("artifact-service/gen/artifact/v1/tag_pb.js", ["artifact-source"])).toBe("/gen/artifact/v1/tag_pb.ts");
  });
});
