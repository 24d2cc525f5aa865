// artifact tag / untag: point a tag at a manifest (create or move), or remove it.
import type { Leaf } from "../cli.js";
import { notFoundError, usageError } from "../exit.js";
import { imagePath, isDigest, parseImageRef, refText } from "../image-ref.js";
import { formatJson } from "../output.js";
import { describeImage } from "./inspect.js";

export const tag: Leaf = {
  name: "tag",
  args: ["<registry>/<namespace>/<repository>:<tag>", "<digest|tag>"],
  summary: "point a tag at a digest or at what another tag points to (create or move)",
  description: `Creates the tag, or moves it if it exists, so that it points at <digest> (sha256:…,
a manifest in the repository) or at the manifest another tag of the same repository points to.
Moving a tag sets its push time. Prints what it did: created, moved (from which digest), or
unchanged.`,
  examples: ["artifact tag local/team/app:stable 1.4.2", "artifact tag local/team/app:stable sha256:4c1a…"],
  async run(ctx, args) {
    const target = parseImageRef(args.positionals[0]!, "image", "tag");
    const image = imagePath(target);
    const sourceText = args.positionals[1]!;
    let source: { digest?: string; tag?: string };
    if (sourceText.includes("/")) {
      const ref = parseImageRef(sourceText, "source", "reference");
      if (imagePath(ref) !== image) throw usageError(`a tag points into its own repository: ${sourceText} is not in ${image}`);
      source = ref.digest ? { digest: ref.digest } : { tag: ref.tag };
    } else if (isDigest(sourceText.replace(/^@/, ""))) {
      source = { digest: sourceText.replace(/^@/, "") };
    } else {
      source = { tag: sourceText };
    }
    const resolver = ctx.resolver();
    const { repository } = await resolver.repository(target);
    let digest: string;
    let mediaType: string;
    let sizeBytes: bigint;
    if (source.digest) {
      // In a HOSTED registry the service takes media type and size from the manifest itself; a
      // REMOTE catalog records what it is told, so tell it what a pull downloads.
      const info = await describeImage(ctx.client(), { ...target, tag: undefined, digest: source.digest });
      digest = info.digest;
      mediaType = info.mediaType;
      sizeBytes = BigInt(info.totalSizeBytes ?? info.sizeBytes);
    } else {
      const found = await resolver.tag(imagePath(target), source.tag!);
      if (!found) throw notFoundError(`tag ${JSON.stringify(source.tag)} not found in ${image}`);
      ({ digest, mediaType, sizeBytes } = found);
    }
    const existing = await resolver.tag(imagePath(target), target.tag!);
    let action: "created" | "moved" | "unchanged";
    if (!existing) {
      await ctx.client().tags.createTag({ tag: { repositoryId: repository.id, name: target.tag!, digest, mediaType, sizeBytes } });
      action = "created";
    } else if (existing.digest === digest) {
      action = "unchanged";
    } else {
      await ctx.client().tags.updateTag({
        tag: { id: existing.id, etag: existing.etag, digest, mediaType, sizeBytes },
        updateMask: { paths: ["digest", "media_type", "size_bytes"] },
      });
      action = "moved";
    }
    const previousDigest = existing?.digest ?? null;
    if (ctx.format === "json") ctx.print(formatJson({ image, tag: target.tag!, digest, previousDigest, action }));
    else if (action === "moved") ctx.print(`Moved ${refText(target)} to ${digest} (from ${previousDigest}).\n`);
    else ctx.print(`${action === "created" ? "Tagged" : "Unchanged:"} ${refText(target)} → ${digest}.\n`);
  },
};

export const untag: Leaf = {
  name: "untag",
  args: ["<registry>/<namespace>/<repository>:<tag>"],
  summary: "delete a tag (the manifest stays until garbage collection)",
  description: `Deletes the tag. The manifest it pointed to stays; garbage collection deletes it once no
tag or index refers to it any more (artifact gc --dry-run shows what that would free).`,
  examples: ["artifact untag local/team/app:old"],
  async run(ctx, args) {
    const target = parseImageRef(args.positionals[0]!, "image", "tag");
    await ctx.resolver().repository(target); // a missing repository says so, not "no such tag"
    const existing = await ctx.resolver().tag(imagePath(target), target.tag!);
    if (!existing) throw notFoundError(`tag ${JSON.stringify(target.tag)} not found in ${imagePath(target)}`);
    await ctx.client().tags.deleteTag({ id: existing.id, etag: existing.etag });
    if (ctx.format === "json") ctx.print(formatJson({ image: imagePath(target), tag: target.tag!, digest: existing.digest, action: "deleted" }));
    else ctx.print(`Untagged ${refText(target)} (was ${existing.digest}).\n`);
  },
};
