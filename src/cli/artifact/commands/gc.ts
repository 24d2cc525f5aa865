// artifact gc: run the service's garbage collector (or ask what it would free).
import { bool, type Leaf } from "../cli.js";
import { formatJson, formatTable, humanBytes } from "../output.js";

/** Digests listed under the table; JSON has all the service returns (up to 100). */
const SAMPLE_SHOWN = 10;

export const gc: Leaf = {
  name: "gc",
  args: [],
  summary: "collect garbage now, or with --dry-run show what would be freed",
  description: `Asks the service to delete untagged manifests that nothing refers to, then blobs no
manifest refers to, then expired upload sessions (GarbageCollectionService; global admins).
Content pushed, mounted or used within the service's grace period (GC_GRACE_MS, one hour by
default) is always kept, so pushes in flight never lose anything. The service also collects in
the background every GC_INTERVAL_MS.`,
  options: { "dry-run": { type: "boolean", description: "report what would be deleted; delete nothing" } },
  examples: ["artifact gc --dry-run", "artifact gc -o json"],
  async run(ctx, args) {
    const r = await ctx.client().garbageCollection.runGarbageCollection({ dryRun: bool(args, "dry-run") ?? false });
    const report = {
      dryRun: r.dryRun,
      manifests: Number(r.manifestsDeleted),
      blobs: Number(r.blobsDeleted),
      bytesFreed: Number(r.bytesFreed),
      uploadsExpired: Number(r.uploadsExpired),
      orphansRemoved: Number(r.orphansRemoved),
      sampleDigests: r.sampleDigests,
      durationMs: Number(r.durationMs),
    };
    if (ctx.format === "json") {
      ctx.print(formatJson(report));
      return;
    }
    const verb = r.dryRun ? "WOULD DELETE" : "DELETED";
    const lines = [
      r.dryRun ? "Garbage collection, dry run: nothing was deleted." : "Garbage collection done.",
      "",
      formatTable(
        ["WHAT", verb, "SIZE"],
        [
          ["unreferenced manifests", String(report.manifests), ""],
          ["unreferenced blobs", String(report.blobs), humanBytes(report.bytesFreed)],
          ["expired upload sessions", String(report.uploadsExpired), ""],
          ["files with no record", String(report.orphansRemoved), ""],
        ],
        [1, 2],
      ).trimEnd(),
      "",
      "Content pushed, mounted or used within the service's grace period (GC_GRACE_MS) is kept and not counted here.",
    ];
    if (report.sampleDigests.length) {
      lines.push("", `${r.dryRun ? "Would delete" : "Deleted"}, manifests first:`, ...report.sampleDigests.slice(0, SAMPLE_SHOWN).map((d) => `  ${d}`));
      const more = report.manifests + report.blobs - SAMPLE_SHOWN;
      if (more > 0) lines.push(`  … and ${more} more (-o json lists up to 100)`);
    }
    lines.push("", `Took ${report.durationMs} ms.`);
    ctx.print(lines.join("\n") + "\n");
  },
};
