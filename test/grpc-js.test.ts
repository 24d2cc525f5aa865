// An independent gRPC client (@grpc/grpc-js, schema from the .proto files by proto-loader)
// against both ports over cleartext HTTP/2: the wire format is real gRPC, not connect-es
// talking to itself.
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../src/paths.js";
import { databaseKinds } from "./support/database.js";
import { adminMetadata } from "./support/grpc-clients.js";
import { startTestServer, type TestServer } from "./support/server.js";

type Callback = (err: grpc.ServiceError | null, res: Record<string, unknown>) => void;
type GrpcClient = grpc.Client & Record<string, (req: unknown, md: grpc.Metadata, cb: Callback) => void>;

const definition = protoLoader.loadSync(
  ["artifact/v1/registry.proto", "artifact/v1/namespace.proto", "artifact/v1/repository.proto", "artifact/v1/tag.proto"],
  {
    includeDirs: [join(packageRoot, "proto"), join(packageRoot, "node_modules/google-proto-files")],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
  },
);
const pkg = grpc.loadPackageDefinition(definition) as unknown as {
  artifact: { v1: Record<string, new (address: string, creds: grpc.ChannelCredentials) => GrpcClient> };
};

/** A unary call, as the admin unless `metadata` says otherwise. */
function call(client: GrpcClient, method: string, request: unknown, metadata = adminMetadata()) {
  return new Promise<{ res: Record<string, unknown> }>((resolve, reject) => {
    client[method]!(request, metadata, (err, res) => (err ? reject(err) : resolve({ res })));
  });
}

async function failure(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  return promise.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (err: grpc.ServiceError) => err,
  );
}

describe.each(databaseKinds())("@grpc/grpc-js client on %s", (kind) => {
  let server: TestServer;
  const clients: GrpcClient[] = [];
  const connect = (service: string, port: number) => {
    const client = new pkg.artifact.v1[service]!(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    server = await startTestServer(kind);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.stop();
  });

  for (const port of ["grpc", "http"] as const) {
    it(`creates and reads the whole hierarchy over h2c on the ${port} port`, async () => {
      const p = server[port].port;
      const registries = connect("RegistryService", p);
      const namespaces = connect("NamespaceService", p);
      const repositories = connect("RepositoryService", p);
      const tags = connect("TagService", p);

      const name = `grpcjs-${port}-${Date.now()}`;
      // REMOTE: there a tag is a free record; a HOSTED registry's tags need pushed manifests.
      const { res: registry } = await call(registries, "CreateRegistry", {
        registry: { name, kind: "REGISTRY_KIND_REMOTE", url: "http://127.0.0.1:9" },
      });
      expect(registry).toMatchObject({ name, kind: "REGISTRY_KIND_REMOTE", etag: "1" });
      const { res: ns } = await call(namespaces, "CreateNamespace", { namespace: { registry_id: registry.id, name: "team" } });
      const { res: repo } = await call(repositories, "CreateRepository", { repository: { namespace_id: ns.id, name: "svc/api" } });
      const digest = `sha256:${"ab".repeat(32)}`;
      const { res: tag } = await call(tags, "CreateTag", {
        tag: { repository_id: repo.id, name: "1.0", digest, media_type: "application/vnd.oci.image.manifest.v1+json", size_bytes: "4096" },
      });
      expect(tag).toMatchObject({ name: "1.0", digest, size_bytes: "4096" });
      expect(tag.push_time).toBeTruthy();

      const { res: list } = await call(tags, "ListTags", { repository_id: repo.id });
      expect((list.tags as { id: string }[]).map((t) => t.id)).toEqual([tag.id]);
      expect(list.total_size).toBe(1);

      const md = adminMetadata();
      md.set("x-request-id", "grpc-js-test-1");
      const { res: got } = await call(registries, "GetRegistry", { id: registry.id }, md);
      expect(got.name).toBe(name);
    });
  }

  it("refuses a call without a credential (UNAUTHENTICATED) and one with a token that is not valid", async () => {
    const registries = connect("RegistryService", server.grpc.port);
    const anonymous = await failure(
      call(registries, "CreateRegistry", { registry: { name: "grpcjs-anon", kind: "REGISTRY_KIND_HOSTED" } }, new grpc.Metadata()),
    );
    expect(anonymous.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(anonymous.details).toMatch(/sign in first/);
    const forged = new grpc.Metadata();
    forged.set("authorization", "Bearer art_not-a-token");
    expect((await failure(call(registries, "ListRegistries", {}, forged))).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("maps every error to its gRPC status code", async () => {
    const registries = connect("RegistryService", server.grpc.port);
    const namespaces = connect("NamespaceService", server.grpc.port);
    const name = `grpcjs-err-${Date.now()}`;
    const { res: r } = await call(registries, "CreateRegistry", { registry: { name, kind: "REGISTRY_KIND_HOSTED" } });
    await call(namespaces, "CreateNamespace", { namespace: { registry_id: r.id, name: "x" } });

    const invalid = await failure(call(registries, "CreateRegistry", { registry: { name: "Bad Name", kind: "REGISTRY_KIND_HOSTED" } }));
    expect(invalid.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(invalid.details).toContain("registry.name");
    expect((await failure(call(registries, "GetRegistry", { id: "00000000-0000-4000-8000-000000000000" }))).code).toBe(grpc.status.NOT_FOUND);
    expect((await failure(call(registries, "CreateRegistry", { registry: { name, kind: "REGISTRY_KIND_HOSTED" } }))).code).toBe(grpc.status.ALREADY_EXISTS);
    expect((await failure(call(registries, "DeleteRegistry", { id: r.id }))).code).toBe(grpc.status.FAILED_PRECONDITION);
    expect((await failure(call(registries, "DeleteRegistry", { id: r.id, etag: "99" }))).code).toBe(grpc.status.ABORTED);
    const err = await failure(call(registries, "GetRegistry", { id: "nope" }));
    expect(err.metadata.get("x-request-id")[0]).toBeTruthy();
  });
});
