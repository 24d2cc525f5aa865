// Server reflection, v1 and v1alpha, seen by independent clients against a real server:
// `buf curl` with no proto files at all, and a reflection client built on @grpc/grpc-js.
// Reflection needs no database, so PGlite is enough here.
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bufCurl, grpcJsClient, target } from "./support/grpc-clients.js";
import { startTestServer, type TestServer } from "./support/server.js";

const SERVICES = [
  "artifact.v1.AccountService",
  "artifact.v1.AuditService",
  "artifact.v1.EventService",
  "artifact.v1.GarbageCollectionService",
  "artifact.v1.ImageService",
  "artifact.v1.ImmutabilityRuleService",
  "artifact.v1.NamespaceService",
  "artifact.v1.RegistryService",
  "artifact.v1.RepositoryService",
  "artifact.v1.RetentionService",
  "artifact.v1.RoleBindingService",
  "artifact.v1.TagService",
  "artifact.v1.TokenService",
  "artifact.v1.WebhookService",
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
];
const REGISTRY_FILE_AND_DEPS = [
  "artifact/v1/registry.proto",
  "google/api/annotations.proto",
  "google/api/field_behavior.proto",
  "google/api/http.proto",
  "google/protobuf/descriptor.proto",
  "google/protobuf/field_mask.proto",
  "google/protobuf/timestamp.proto",
];
const HTTP_RULE_EXTENSION = 72295728; // google.api.http on MethodOptions
const FIELD_BEHAVIOR_EXTENSION = 1052; // google.api.field_behavior on FieldOptions

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer("pglite");
});
afterAll(() => server?.stop());

// ---- the grpc-js reflection client -------------------------------------------------------

interface ReflectionResponse {
  valid_host: string;
  original_request: Record<string, unknown>;
  message_response: "file_descriptor_response" | "all_extension_numbers_response" | "list_services_response" | "error_response";
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  all_extension_numbers_response?: { base_type_name: string; extension_number: number[] };
  list_services_response?: { service: { name: string }[] };
  error_response?: { error_code: number; error_message: string };
}

/** One ServerReflectionInfo stream: ask() writes a request and resolves with its answer (answers come in order). */
function reflectionSession(version: "v1" | "v1alpha", url: string) {
  const Client = grpcJsClient("@grpc/reflection/build/proto", `grpc/reflection/${version}/reflection.proto`, `grpc.reflection.${version}.ServerReflection`);
  const client = new Client(target(url), grpc.credentials.createInsecure());
  const call = (client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<object, ReflectionResponse> }).ServerReflectionInfo();
  const waiting: { resolve(res: ReflectionResponse): void; reject(err: Error): void }[] = [];
  call.on("data", (res: ReflectionResponse) => waiting.shift()?.resolve(res));
  call.on("error", (err: Error) => waiting.splice(0).forEach((w) => w.reject(err)));
  return {
    ask(request: object): Promise<ReflectionResponse> {
      return new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
        call.write({ host: "artifact.test", ...request });
      });
    },
    close() {
      call.end();
      client.close();
    },
  };
}

function files(res: ReflectionResponse): FileDescriptorProto[] {
  expect(res.error_response, JSON.stringify(res.error_response)).toBeUndefined();
  return res.file_descriptor_response!.file_descriptor_proto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
}

function commentsOf(file: FileDescriptorProto): string {
  return (file.sourceCodeInfo?.location ?? []).map((l) => l.leadingComments + l.trailingComments).join("\n");
}

describe.each(["v1", "v1alpha"] as const)("reflection %s with a grpc-js client", (version) => {
  let session: ReturnType<typeof reflectionSession>;
  beforeAll(() => {
    session = reflectionSession(version, server.grpcUrl);
  });
  afterAll(() => session?.close());

  it("list_services names every served service, and echoes host and request", async () => {
    const res = await session.ask({ list_services: "*" });
    expect(res.list_services_response!.service.map((s) => s.name).sort()).toEqual(SERVICES);
    expect(res.valid_host).toBe("artifact.test");
    expect(res.original_request).toMatchObject({ host: "artifact.test", list_services: "*" });
  });

  it("file_by_filename sends the file first, then every transitive dependency, with comments", async () => {
    const fresh = reflectionSession(version, server.grpcUrl);
    try {
      const sent = files(await fresh.ask({ file_by_filename: "artifact/v1/registry.proto" }));
      expect(sent[0]!.name).toBe("artifact/v1/registry.proto");
      expect(sent.map((f) => f.name).sort()).toEqual(REGISTRY_FILE_AND_DEPS);
      const names = new Set(sent.map((f) => f.name));
      for (const file of sent) for (const dep of file.dependency) expect(names, `${file.name} imports ${dep}`).toContain(dep);
      // Source info survived: comments from our proto and from the imported ones.
      expect(commentsOf(sent[0]!)).toContain("RegistryService manages registries");
      expect(commentsOf(sent.find((f) => f.name === "google/api/http.proto")!)).toContain("gRPC Transcoding");
      // The google.api.http options are there for REST-aware clients.
      const getRegistry = sent[0]!.service[0]!.method.find((m) => m.name === "GetRegistry")!;
      expect(getRegistry.options).toBeDefined();

      // On the same stream each dependency goes only once: tag.proto imports the same files.
      const more = files(await fresh.ask({ file_by_filename: "artifact/v1/tag.proto" }));
      expect(more.map((f) => f.name)).toEqual(["artifact/v1/tag.proto"]);
      // The asked-for file itself always comes, even when it was sent before.
      expect(files(await fresh.ask({ file_by_filename: "google/api/http.proto" })).map((f) => f.name)).toEqual(["google/api/http.proto"]);
    } finally {
      fresh.close();
    }
  });

  it.each([
    ["artifact.v1.RegistryService", "artifact/v1/registry.proto"],
    ["artifact.v1.RegistryService.GetRegistry", "artifact/v1/registry.proto"],
    ["artifact.v1.Registry", "artifact/v1/registry.proto"],
    ["artifact.v1.Registry.name", "artifact/v1/registry.proto"],
    ["artifact.v1.RegistryKind", "artifact/v1/registry.proto"],
    ["artifact.v1.REGISTRY_KIND_HOSTED", "artifact/v1/registry.proto"],
    ["artifact.v1.TagService", "artifact/v1/tag.proto"],
    ["google.protobuf.Timestamp", "google/protobuf/timestamp.proto"],
    ["google.api.http", "google/api/annotations.proto"],
    ["grpc.health.v1.Health", "health/v1/health.proto"],
    ["grpc.health.v1.HealthCheckResponse.ServingStatus", "health/v1/health.proto"],
    [`grpc.reflection.${version}.ServerReflection`, `grpc/reflection/${version}/reflection.proto`],
  ])("file_containing_symbol %s → %s", async (symbol, file) => {
    const sent = files(await session.ask({ file_containing_symbol: symbol }));
    expect(sent[0]!.name).toBe(file);
  });

  it("file_containing_symbol for the health service carries its comments", async () => {
    const fresh = reflectionSession(version, server.grpcUrl);
    try {
      const [health] = files(await fresh.ask({ file_containing_symbol: "grpc.health.v1.Health" }));
      expect(commentsOf(health!)).toMatch(/Watch/);
    } finally {
      fresh.close();
    }
  });

  it("file_containing_extension finds the file that defines an extension", async () => {
    const sent = files(
      await session.ask({ file_containing_extension: { containing_type: "google.protobuf.MethodOptions", extension_number: HTTP_RULE_EXTENSION } }),
    );
    expect(sent[0]!.name).toBe("google/api/annotations.proto");
    const behavior = files(
      await session.ask({ file_containing_extension: { containing_type: "google.protobuf.FieldOptions", extension_number: FIELD_BEHAVIOR_EXTENSION } }),
    );
    expect(behavior[0]!.name).toBe("google/api/field_behavior.proto");
  });

  it("all_extension_numbers_of_type lists the known extensions of a message", async () => {
    const method = await session.ask({ all_extension_numbers_of_type: "google.protobuf.MethodOptions" });
    expect(method.all_extension_numbers_response).toEqual({ base_type_name: "google.protobuf.MethodOptions", extension_number: [HTTP_RULE_EXTENSION] });
    const field = await session.ask({ all_extension_numbers_of_type: "google.protobuf.FieldOptions" });
    expect(field.all_extension_numbers_response!.extension_number).toEqual([FIELD_BEHAVIOR_EXTENSION]);
    const none = await session.ask({ all_extension_numbers_of_type: "artifact.v1.Registry" });
    expect(none.all_extension_numbers_response!.extension_number).toEqual([]);
  });

  it.each([
    [{ file_by_filename: "artifact/v1/nope.proto" }, 5, "artifact/v1/nope.proto"],
    [{ file_containing_symbol: "artifact.v1.Nope" }, 5, "artifact.v1.Nope"],
    [{ file_containing_extension: { containing_type: "google.protobuf.MethodOptions", extension_number: 1 } }, 5, "extension number 1"],
    [{ file_containing_extension: { containing_type: "artifact.v1.Nope", extension_number: 1 } }, 5, "artifact.v1.Nope"],
    [{ all_extension_numbers_of_type: "artifact.v1.Nope" }, 5, "artifact.v1.Nope"],
    [{}, 3, "message_request is not set"],
  ])("errors come as error_response and the stream goes on: %j", async (request, code, text) => {
    const res = await session.ask(request);
    expect(res.message_response).toBe("error_response");
    expect(res.error_response!.error_code).toBe(code);
    expect(res.error_response!.error_message).toContain(text);
    expect((await session.ask({ list_services: "" })).list_services_response!.service).toHaveLength(SERVICES.length);
  });
});

// ---- buf curl, which brings no proto files: everything it knows comes from reflection ---------

describe("reflection with buf curl", () => {
  it.each(["grpc-v1", "grpc-v1alpha"])("--list-services over %s on both ports", async (protocol) => {
    for (const url of [server.grpcUrl, server.httpUrl]) {
      const res = await bufCurl(["--reflect-protocol", protocol, "--list-services", url]);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout.trim().split("\n").sort()).toEqual(SERVICES);
    }
  });

  it("--list-methods lists every method of every service", async () => {
    const res = await bufCurl(["--list-methods", server.grpcUrl]);
    expect(res.code, res.stderr).toBe(0);
    const methods = res.stdout.trim().split("\n");
    for (const m of [
      "artifact.v1.RegistryService/CreateRegistry",
      "artifact.v1.RegistryService/ListRegistries",
      "artifact.v1.TagService/GetTag",
      "grpc.health.v1.Health/Check",
      "grpc.health.v1.Health/Watch",
      "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    ]) {
      expect(methods).toContain(m);
    }
    expect(methods.filter((m) => m.startsWith("artifact.v1.NamespaceService/")).sort()).toEqual([
      "artifact.v1.NamespaceService/CreateNamespace",
      "artifact.v1.NamespaceService/DeleteNamespace",
      "artifact.v1.NamespaceService/GetNamespace",
      "artifact.v1.NamespaceService/ListNamespaces",
      "artifact.v1.NamespaceService/LookupNamespace",
      "artifact.v1.NamespaceService/UpdateNamespace",
    ]);
  });

  it.each(["grpc-v1", "grpc-v1alpha"])("calls RPCs with JSON it encodes from reflected schemas (%s)", async (protocol) => {
    const name = `reflected-${protocol.replace("grpc-", "")}`;
    const created = await bufCurl([
      "--reflect-protocol",
      protocol,
      "--data",
      JSON.stringify({ registry: { name, kind: "REGISTRY_KIND_HOSTED" } }),
      `${server.grpcUrl}/artifact.v1.RegistryService/CreateRegistry`,
    ]);
    expect(created.code, created.stderr).toBe(0);
    const registry = JSON.parse(created.stdout) as { id: string; name: string; kind: string };
    expect(registry).toMatchObject({ name, kind: "REGISTRY_KIND_HOSTED" });
    const got = await bufCurl([
      "--reflect-protocol",
      protocol,
      "--data",
      JSON.stringify({ id: registry.id }),
      `${server.grpcUrl}/artifact.v1.RegistryService/GetRegistry`,
    ]);
    expect(got.code, got.stderr).toBe(0);
    expect(JSON.parse(got.stdout)).toMatchObject({ id: registry.id, name });
  });

  it("an unknown method is reported as such, not as a server error", async () => {
    const res = await bufCurl([`${server.grpcUrl}/artifact.v1.RegistryService/Nope`]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/Nope/);
  });
});
