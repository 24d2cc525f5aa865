// The ceiling: an RPC that takes and returns exactly what TagService.GetTag does but touches no
// database. Mounted only by the benchmark's server, through the same listener, adapter and
// interceptors as the product API, so GetTag ÷ ceiling is the share of time the database leaves us.
// The service is described at run time so that proto/ and gen/ stay free of bench-only API.
import { create, createFileRegistry, type DescMethodUnary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, timestampFromDate, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { file_artifact_v1_tag, GetTagRequestSchema, TagSchema } from "../gen/artifact/v1/tag_pb.js";

export const CEILING_SERVICE = "bench.v1.CeilingService";

const file: FileDescriptorProto = create(FileDescriptorProtoSchema, {
  name: "bench/v1/ceiling.proto",
  package: "bench.v1",
  syntax: "proto3",
  dependency: [file_artifact_v1_tag.proto.name],
  service: [
    {
      name: "CeilingService",
      method: [{ name: "GetTag", inputType: ".artifact.v1.GetTagRequest", outputType: ".artifact.v1.Tag" }],
    },
  ],
});

const registry = createFileRegistry(file, (name) => (name === file_artifact_v1_tag.proto.name ? file_artifact_v1_tag : undefined));
const service = registry.getService(CEILING_SERVICE);
if (!service) throw new Error(`${CEILING_SERVICE} missing from its own descriptor`);
export const CeilingService = service;
const getTag = service.methods[0];
if (getTag?.methodKind !== "unary" || getTag.input.typeName !== GetTagRequestSchema.typeName) throw new Error("ceiling descriptor is not GetTag-shaped");
export const ceilingGetTag = getTag as DescMethodUnary<typeof GetTagRequestSchema, typeof TagSchema>;

// Shaped like a seeded tag, so both calls serialize messages of the same size.
const now = timestampFromDate(new Date());
const constantTag = create(TagSchema, {
  id: "00000000-0000-4000-8000-000000000000",
  repositoryId: "00000000-0000-4000-8000-000000000001",
  name: "t-000000",
  digest: `sha256:${"0".repeat(64)}`,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  sizeBytes: 123_456_789n,
  pushTime: now,
  createTime: now,
  updateTime: now,
  etag: "1",
});

export function ceilingRoutes(router: ConnectRouter): void {
  router.rpc(ceilingGetTag, async () => constantTag);
}
