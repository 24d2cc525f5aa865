// Bench-only RPCs, described at run time so that proto/ and gen/ keep only the product API.
// Every method takes and returns exactly what TagService.GetTag does:
//   bench.v1.CeilingService/GetTag      no database: the ceiling
//   bench.v1.DiagnosticService/…        GetTag's query run other ways, to tell where its time goes
import { create, createFileRegistry, type DescMethodUnary, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { file_artifact_v1_tag, GetTagRequestSchema, TagSchema } from "../gen/artifact/v1/tag_pb.js";

export type GetTagMethod = DescMethodUnary<typeof GetTagRequestSchema, typeof TagSchema>;

export const DIAGNOSTIC_METHODS = ["GetTagDrizzlePrepared", "GetTagSqlUnprepared", "GetTagSqlPrepared"] as const;

const getTagShaped = (name: string) => ({ name, inputType: ".artifact.v1.GetTagRequest", outputType: ".artifact.v1.Tag" });

const registry = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "bench/v1/bench.proto",
    package: "bench.v1",
    syntax: "proto3",
    dependency: [file_artifact_v1_tag.proto.name],
    service: [
      { name: "CeilingService", method: [getTagShaped("GetTag")] },
      { name: "DiagnosticService", method: DIAGNOSTIC_METHODS.map(getTagShaped) },
    ],
  }),
  (name) => (name === file_artifact_v1_tag.proto.name ? file_artifact_v1_tag : undefined),
);

function service(typeName: string): DescService {
  const s = registry.getService(typeName);
  if (!s) throw new Error(`${typeName} missing from its own descriptor`);
  return s;
}

function method(s: DescService, name: string): GetTagMethod {
  const m = s.methods.find((x) => x.name === name);
  if (m?.methodKind !== "unary" || m.input.typeName !== GetTagRequestSchema.typeName) throw new Error(`${s.typeName}/${name} is not GetTag-shaped`);
  return m as GetTagMethod;
}

export const CeilingService = service("bench.v1.CeilingService");
export const ceilingGetTag = method(CeilingService, "GetTag");
export const DiagnosticService = service("bench.v1.DiagnosticService");
export const diagnosticMethods = Object.fromEntries(DIAGNOSTIC_METHODS.map((n) => [n, method(DiagnosticService, n)])) as Record<
  (typeof DIAGNOSTIC_METHODS)[number],
  GetTagMethod
>;
