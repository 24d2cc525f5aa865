import type { ServiceImpl } from "@connectrpc/connect";
import { GarbageCollectionService } from "../../gen/artifact/v1/garbage_collection_pb.js";
import type { GarbageCollector, GcOptions } from "../store/gc.js";

export function garbageCollectionService(collector: GarbageCollector, settings: Omit<GcOptions, "dryRun">): ServiceImpl<typeof GarbageCollectionService> {
  return {
    async runGarbageCollection(req) {
      const report = await collector.run({ ...settings, dryRun: req.dryRun });
      return {
        dryRun: report.dryRun,
        manifestsDeleted: BigInt(report.manifestsDeleted),
        blobsDeleted: BigInt(report.blobsDeleted),
        bytesFreed: BigInt(report.bytesFreed),
        uploadsExpired: BigInt(report.uploadsExpired),
        orphansRemoved: BigInt(report.orphansRemoved),
        sampleDigests: report.sample,
        durationMs: BigInt(report.durationMs),
        gracePeriod: { seconds: BigInt(Math.floor(settings.graceMs / 1000)), nanos: (settings.graceMs % 1000) * 1_000_000 },
      };
    },
  };
}
