// Manifests of HOSTED repositories: pull (GET/HEAD by tag or digest), push, delete.
import { createHash } from "node:crypto";
import { parseManifest } from "../domain/manifest.js";
import type { OciDeps } from "./deps.js";
import { digestInvalid, manifestTooLarge, manifestUnknown } from "../domain/errors.js";
import { header, notModified, readLimited, send, type Request, type Response } from "./http.js";
import type { ImageName } from "../domain/image-name.js";
import { referenceText, type Reference } from "../domain/reference.js";

/** A manifest's exact bytes (none for HEAD), or 304 when the client has them. */
export function serveManifest(req: Request, res: Response, manifest: { digest: string; mediaType: string; payload: Uint8Array }): void {
  const etag = `"${manifest.digest}"`;
  if (notModified(req, etag)) return send(res, 304, { "docker-content-digest": manifest.digest, etag });
  send(
    res,
    200,
    {
      "content-type": manifest.mediaType,
      "content-length": manifest.payload.byteLength,
      "docker-content-digest": manifest.digest,
      etag,
    },
    req.method === "HEAD" ? undefined : manifest.payload,
  );
}

export async function putManifest(
  deps: OciDeps,
  req: Request,
  res: Response,
  name: ImageName,
  reference: Reference,
  repositoryId: () => Promise<string>,
): Promise<void> {
  const max = deps.limits.manifestMaxBytes;
  const bytes = await readLimited(req, max, (size) =>
    manifestTooLarge(`manifest invalid: it is ${size}; at most ${max} bytes are accepted (MANIFEST_MAX_BYTES)`),
  );
  const manifest = parseManifest(bytes, header(req, "content-type"));
  let digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  if ("digest" in reference) {
    const algorithm = reference.digest.split(":")[0]!;
    if (algorithm !== "sha256") digest = `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
    if (digest !== reference.digest) throw digestInvalid(`manifest digest ${digest} does not match the reference ${reference.digest}`);
  }
  const pushed = await deps.store.images.pushManifest({
    repositoryId: await repositoryId(),
    digest,
    bytes,
    manifest,
    tag: "tag" in reference ? reference.tag : undefined,
  });
  const headers: Record<string, string | number> = {
    location: `/v2/${name.full}/manifests/${digest}`,
    "docker-content-digest": digest,
    "content-length": 0,
  };
  if (pushed.subjectDigest) headers["oci-subject"] = pushed.subjectDigest;
  send(res, 201, headers);
}

/** By digest: the manifest and its tags. By tag: only the tag (the manifest stays until GC). */
export async function deleteManifest(deps: OciDeps, res: Response, repositoryId: string, reference: Reference): Promise<void> {
  const deleted =
    "digest" in reference
      ? await deps.store.images.deleteManifest(repositoryId, reference.digest)
      : await deps.store.images.deleteTag(repositoryId, reference.tag);
  if (!deleted) throw manifestUnknown(`manifest unknown: ${referenceText(reference)}`);
  send(res, 202, { "content-length": 0 });
}
