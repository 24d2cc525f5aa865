// The ceiling: GetTag's request and response, served through the same listener, adapter and
// interceptors as the product API, without the database. GetTag ÷ ceiling is the share of the
// framework's speed that is left once the database is involved.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { TagSchema } from "../gen/artifact/v1/tag_pb.js";
import { ceilingGetTag } from "./services.js";

// Shaped like a seeded tag, so both calls serialize messages of the same size.
const now = timestampFromDate(new Date());
const constantTag = create(TagSchema, {
  id: "00000000-0000-4000-8000-000000000000",
  repositoryId: "00000000-0000-4000-8000-000000000001",
  name: "t-000000",
  digest: `sha256:${"0".repeat(64)}`,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  sizeBytes: 1_000_000n,
  pushTime: now,
  createTime: now,
  updateTime: now,
  etag: "1",
});

export function ceilingRoutes(router: ConnectRouter): void {
  router.rpc(ceilingGetTag, async () => constantTag);
}
