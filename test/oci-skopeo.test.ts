// Debian's skopeo against the service's /v2/: push, pull back into a local layout, copy between
// two repositories of the service, inspect, list-tags and delete, for the four standard images
// (small, multi-layer with a 64 MiB layer, a two-platform index, a Docker schema2 image). Every
// manifest, config and layer must survive byte for byte.
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import { catalogClients, unique } from "./support/clients.js";
import { databaseKinds } from "./support/database.js";
import { fileDigest, standardImage, STANDARD_IMAGE_NAMES, type BuiltImage, type StandardImageName } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import {
  dockerRef,
  pullImage,
  pushImage,
  skopeoCopy,
  skopeoDelete,
  skopeoInspect,
  skopeoInspectRaw,
  skopeoListTags,
  type RegistryEndpoint,
} from "./support/skopeo.js";
import { startTestServer, transports, type TestServer } from "./support/server.js";

const ready = havePeers("test/oci-skopeo.test.ts", "skopeo");

/** Where a pulled copy keeps a blob: an OCI layout's blobs/sha256/<hex>, or skopeo dir:'s <hex>. */
function pulledBlobPath(dir: string, transport: "oci" | "dir", digest: string): string {
  const hex = digest.split(":")[1]!;
  return transport === "oci" ? join(dir, "blobs", "sha256", hex) : join(dir, hex);
}

describe.skipIf(!ready).each(databaseKinds())("skopeo against /v2/ on %s", (kind) => {
  let server: TestServer;
  let endpoint: RegistryEndpoint;
  let registry: string;
  const scratch = mkdtempSync(join(tmpdir(), "artifact-skopeo-pull-"));

  beforeAll(async () => {
    server = await startTestServer(kind);
    endpoint = { host: `127.0.0.1:${server.http.port}` };
    registry = unique("skopeo");
    const c = catalogClients(transports["connect+json over HTTP/1.1"]!(server.httpUrl));
    await c.registries.createRegistry({ registry: { name: registry, kind: RegistryKind.HOSTED } });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  describe.each(STANDARD_IMAGE_NAMES)("the %s image", (imageName: StandardImageName) => {
    let image: BuiltImage;
    const isIndex = imageName === "multi-platform";
    const repo = () => `${registry}/team/${imageName}`;
    beforeAll(async () => {
      image = await standardImage(imageName);
    });

    it("pushes with the manifest digest unchanged and inspects to the same bytes", async () => {
      const digest = await pushImage(image, endpoint, repo(), "1.0");
      expect(digest).toBe(image.digest);
      const raw = await skopeoInspectRaw(dockerRef(endpoint, repo(), "1.0"));
      expect(raw.equals(image.bytes)).toBe(true);
      const byDigest = await skopeoInspectRaw(dockerRef(endpoint, repo(), image.digest));
      expect(byDigest.equals(image.bytes)).toBe(true);
      for (const m of image.manifests) {
        // Every image manifest of an index too.
        expect((await skopeoInspectRaw(dockerRef(endpoint, repo(), m.digest))).equals(m.bytes)).toBe(true);
      }
      if (!isIndex) {
        const info = await skopeoInspect(dockerRef(endpoint, repo(), "1.0"));
        expect(info.Digest).toBe(image.digest);
        expect(info.Layers).toEqual(image.manifests[0]!.layers.map((l) => l.digest));
      }
    });

    it("pulls back into a local layout with every manifest, config and layer byte for byte", async () => {
      const dir = join(scratch, `${kind}-${imageName}`);
      const pulled = await pullImage(endpoint, repo(), "1.0", { dir, transport: image.transport }, { all: isIndex });
      expect(pulled.digest).toBe(image.digest);
      for (const m of image.manifests) {
        const manifestPath =
          image.transport === "oci" ? pulledBlobPath(dir, "oci", m.digest) : join(dir, isIndex ? `${m.digest.split(":")[1]}.manifest.json` : "manifest.json");
        expect((await readFile(manifestPath)).equals(m.bytes), `manifest ${m.digest}`).toBe(true);
        for (const blob of [m.config, ...m.layers]) {
          expect(await fileDigest(pulledBlobPath(dir, image.transport, blob.digest)), `blob ${blob.digest}`).toBe(blob.digest);
        }
      }
      if (isIndex) expect((await readFile(pulledBlobPath(dir, "oci", image.digest))).equals(image.bytes)).toBe(true);
    });

    it("copies to another repository of the service, lists tags, and deletes", async () => {
      const copy = `${registry}/mirror/${imageName}`;
      const copied = await skopeoCopy(dockerRef(endpoint, repo(), "1.0"), dockerRef(endpoint, copy, "copied"), { all: isIndex });
      expect(copied.digest).toBe(image.digest);
      expect((await skopeoInspectRaw(dockerRef(endpoint, copy, "copied"))).equals(image.bytes)).toBe(true);

      await skopeoCopy(dockerRef(endpoint, repo(), "1.0"), dockerRef(endpoint, repo(), "latest"), { all: isIndex });
      expect((await skopeoListTags(`docker://${endpoint.host}/${repo()}`)).sort()).toEqual(["1.0", "latest"]);

      // skopeo deletes by digest: every tag of that manifest goes.
      await skopeoDelete(dockerRef(endpoint, copy, "copied"));
      expect(await skopeoListTags(`docker://${endpoint.host}/${copy}`)).toEqual([]);
      await expect(skopeoInspectRaw(dockerRef(endpoint, copy, image.digest))).rejects.toThrow(/manifest unknown/i);
      // The source repository is untouched.
      expect((await skopeoInspectRaw(dockerRef(endpoint, repo(), "latest"))).equals(image.bytes)).toBe(true);
    });
  });
});
