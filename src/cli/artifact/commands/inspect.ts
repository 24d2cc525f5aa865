// artifact inspect: what a manifest says, through ImageService.GetManifest (HOSTED from the
// store, REMOTE through the pull-through cache, as /v2/ serves it).
import { Code, ConnectError } from "@connectrpc/connect";
import type { ArtifactClient } from "../../../client/node.js";
import type { Descriptor, Platform } from "../../../../gen/artifact/v1/image_pb.js";
import { bool, type Leaf } from "../cli.js";
import { imagePath, parseImageRef, refText, type ImageRef } from "../image-ref.js";
import { formatFields, formatJson, formatTable, humanBytes, shortDigest } from "../output.js";

const platformText = (p: Platform | undefined) =>
  p && (p.os || p.architecture) ? [p.os, p.architecture, p.variant].filter(Boolean).join("/") + (p.osVersion ? ` (${p.osVersion})` : "") : null;

function descriptorView(d: Descriptor) {
  return { digest: d.digest, mediaType: d.mediaType, sizeBytes: Number(d.sizeBytes), artifactType: d.artifactType || null };
}

/** Children fetched at once: an index lists a handful of platforms, rarely more. */
const CHILDREN_AT_ONCE = 4;

async function inBatches<T, R>(items: T[], size: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(work))));
  return out;
}

/**
 * A manifest and what a pull of it downloads: for an image its bytes, config and layers; for an
 * index its bytes and each listed manifest's (read too). A child the service cannot find counts
 * as unknown (null), and so does the total.
 */
export async function describeImage(client: ArtifactClient, ref: ImageRef) {
  const repository = imagePath(ref);
  const m = await client.images.getManifest({ repository, reference: ref.digest ?? ref.tag ?? "latest" });
  const s = m.summary;
  const manifests = await inBatches(s?.manifests ?? [], CHILDREN_AT_ONCE, async (d) => {
    let totalSizeBytes: number | null;
    try {
      const child = await client.images.getManifest({ repository, reference: d.digest });
      totalSizeBytes = Number(child.sizeBytes) + Number(child.summary?.referencedSizeBytes ?? 0n);
    } catch (err) {
      if (!(err instanceof ConnectError && err.code === Code.NotFound)) throw err;
      totalSizeBytes = null;
    }
    return { ...descriptorView(d), platform: platformText(d.platform), totalSizeBytes };
  });
  const isIndex = (s?.manifests.length ?? 0) > 0 || /index|list/.test(m.mediaType);
  const childTotals = manifests.map((c) => c.totalSizeBytes);
  const totalSizeBytes = isIndex
    ? childTotals.includes(null)
      ? null
      : childTotals.reduce<number>((a, b) => a + b!, Number(m.sizeBytes))
    : Number(m.sizeBytes) + Number(s?.referencedSizeBytes ?? 0n);
  return {
    image: refText(ref),
    repository,
    digest: m.digest,
    mediaType: m.mediaType,
    kind: isIndex ? ("index" as const) : ("image" as const),
    sizeBytes: Number(m.sizeBytes),
    artifactType: s?.artifactType || null,
    config: s?.config ? descriptorView(s.config) : null,
    layers: (s?.layers ?? []).map(descriptorView),
    manifests,
    subject: s?.subject ? descriptorView(s.subject) : null,
    annotations: { ...s?.annotations },
    totalSizeBytes,
    raw: m.raw,
  };
}

export const inspect: Leaf = {
  name: "inspect",
  args: ["<registry>/<namespace>/<repository>(:<tag>|@<digest>)"],
  summary: "show an image's manifest: digest, media type, platforms, layers, sizes",
  description: `Reads the manifest of an image by tag or digest (a REMOTE registry's through the
pull-through cache) and shows its digest and media type; for an index (multi-platform image)
each platform's manifest and size, for an image its config and layers; and the total a pull
downloads (every platform, for an index). No tag or digest: :latest.`,
  options: {
    raw: { type: "boolean", description: "print the manifest's exact bytes instead" },
    trunc: { type: "boolean", negatable: true, description: "short digests in the tables (the default; --no-trunc: whole ones)" },
  },
  examples: ["artifact inspect local/team/app:1.0", "artifact inspect local/team/app@sha256:4c1a… -o json"],
  async run(ctx, args) {
    const ref = parseImageRef(args.positionals[0]!, "image");
    const info = await describeImage(ctx.client(), ref);
    if (bool(args, "raw")) {
      ctx.print(Buffer.from(info.raw).toString("utf8"));
      return;
    }
    const { raw: _raw, ...view } = info;
    if (ctx.format === "json") {
      ctx.print(formatJson(view));
      return;
    }
    const digest = bool(args, "trunc") === false ? (d: string) => d : shortDigest;
    const fields: [string, string][] = [
      ["Image", info.image],
      ["Digest", info.digest],
      ["Media type", info.mediaType],
      ["Manifest size", humanBytes(info.sizeBytes)],
    ];
    if (info.artifactType) fields.push(["Artifact type", info.artifactType]);
    if (info.subject) fields.push(["Subject", `${info.subject.digest} (${info.subject.mediaType})`]);
    if (info.config) fields.push(["Config", `${info.config.digest} (${info.config.mediaType}, ${humanBytes(info.config.sizeBytes)})`]);
    for (const [key, value] of Object.entries(info.annotations)) fields.push([`Annotation ${key}`, value]);
    const total = info.totalSizeBytes === null ? "unknown (a listed manifest is missing)" : humanBytes(info.totalSizeBytes);
    fields.push(["Total size", `${total}${info.kind === "index" ? ", every platform" : ""}`]);
    let text = formatFields(fields);
    if (info.kind === "index") {
      text +=
        "\n" +
        formatTable(
          ["PLATFORM", "DIGEST", "MEDIA TYPE", "SIZE"],
          info.manifests.map((c) => [c.platform ?? "-", digest(c.digest), c.mediaType, c.totalSizeBytes === null ? "?" : humanBytes(c.totalSizeBytes)]),
          [3],
        );
    } else if (info.layers.length) {
      text +=
        "\n" +
        formatTable(
          ["#", "LAYER", "MEDIA TYPE", "SIZE"],
          info.layers.map((l, i) => [String(i + 1), digest(l.digest), l.mediaType, humanBytes(l.sizeBytes)]),
          [0, 3],
        );
    }
    ctx.print(text);
  },
};
