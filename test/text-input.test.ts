// Text the database cannot store (NUL) or would store changed (a lone surrogate) is a client's
// mistake: INVALID_ARGUMENT naming the field on every protocol and on REST, 400 on /v2/, never a
// 500, and nothing half-written. The check is generic (every string field of every request), so
// these tests cover fields of several depths and methods rather than a list of known fields.
import { Code, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NamespaceService } from "../gen/artifact/v1/namespace_pb.js";
import { RegistryKind, RegistryService } from "../gen/artifact/v1/registry_pb.js";
import { RepositoryService } from "../gen/artifact/v1/repository_pb.js";
import { expectCode, unique } from "./support/clients.js";
import { adminFetch } from "./support/credentials.js";
import { databaseKinds } from "./support/database.js";
import { expectOciError, makeImage, RegistryClient } from "./support/registry-client.js";
import { startTestServer, transports, type TestServer } from "./support/server.js";

const NUL = "team\u0000images";

describe.each(databaseKinds())("text the database cannot store, on %s", (kind) => {
  let server: TestServer;
  let registryId: string;
  let registryName: string;
  beforeAll(async () => {
    server = await startTestServer(kind);
    const client = createClient(RegistryService, transports["connect+json over HTTP/1.1"]!(server.httpUrl));
    registryName = unique("text");
    registryId = (await client.createRegistry({ registry: { name: registryName, kind: RegistryKind.HOSTED, description: "before" } })).id;
  });
  afterAll(() => server?.stop());

  describe.each(Object.keys(transports))("over %s", (transport) => {
    it("refuses a NUL in descriptions on create and update, naming the field; nothing changes", async () => {
      const bad = NUL;
      const t = transports[transport]!(server.httpUrl);
      const registries = createClient(RegistryService, t);
      await expectCode(
        registries.createRegistry({ registry: { name: unique("r"), kind: RegistryKind.HOSTED, description: bad } }),
        Code.InvalidArgument,
        /^registry\.description: /,
      );
      await expectCode(
        registries.updateRegistry({ registry: { id: registryId, description: bad }, updateMask: { paths: ["description"] } }),
        Code.InvalidArgument,
        /registry\.description/,
      );
      expect((await registries.getRegistry({ id: registryId })).description).toBe("before");

      const ns = await createClient(NamespaceService, t).createNamespace({ namespace: { registryId, name: unique("ns").replace(/-/g, ".") } });
      await expectCode(
        createClient(NamespaceService, t).updateNamespace({ namespace: { id: ns.id, description: bad }, updateMask: { paths: ["description"] } }),
        Code.InvalidArgument,
        /namespace\.description/,
      );
      await expectCode(
        createClient(RepositoryService, t).createRepository({ repository: { namespaceId: ns.id, name: "app", description: bad } }),
        Code.InvalidArgument,
        /repository\.description/,
      );
    });

    it("refuses a NUL in nested and filter fields: sync_filter.tag_pattern, credential, list query", async () => {
      const registries = createClient(RegistryService, transports[transport]!(server.httpUrl));
      const remote = (extra: object) => ({ registry: { name: unique("r"), kind: RegistryKind.REMOTE, url: "http://127.0.0.1:9", ...extra } });
      await expectCode(registries.createRegistry(remote({ syncFilter: { tagPattern: "v\u0000.*" } })), Code.InvalidArgument, /sync_filter\.tag_pattern/);
      await expectCode(
        registries.createRegistry(remote({ credential: { kind: { case: "basic", value: { username: "ci\u0000", password: "x" } } } })),
        Code.InvalidArgument,
        /credential\.basic\.username/,
      );
      await expectCode(registries.listRegistries({ query: "a\u0000" }), Code.InvalidArgument, /query/);
    });
  });

  it("text that is not valid Unicode never arrives: lone surrogates in JSON, invalid UTF-8 in JSON and protobuf", async () => {
    const url = `${server.httpUrl}/artifact.v1.RegistryService/UpdateRegistry`;
    for (const escaped of ["caf\\ud800e", "\\udc00"]) {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: `{"registry": {"id": "${registryId}", "description": "${escaped}"}, "updateMask": "description"}`,
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/description/) as unknown });
    }
    // Connect JSON whose bytes are not UTF-8 (found by a probe: stored with U+FFFD in their place).
    for (const bad of [[0xff], [0xc3, 0x28], [0xc0, 0xaf], [0xed, 0xa0, 0x80]]) {
      const body = Buffer.concat([
        Buffer.from(`{"registry": {"id": "${registryId}", "description": "a`),
        Buffer.from(bad),
        Buffer.from(`b"}, "updateMask": "description"}`),
      ]);
      const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
      expect(res.status, Buffer.from(bad).toString("hex")).toBe(400);
      expect(await res.json()).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/UTF-8/) as unknown });
    }
    // UpdateRegistryRequest { registry (1) { id (1), description (6): bytes C3 28 } }: not UTF-8.
    const id = Buffer.from(registryId);
    const inner = Buffer.concat([Buffer.from([0x0a, id.length]), id, Buffer.from([0x32, 2, 0xc3, 0x28])]);
    const binary = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/proto" },
      body: Buffer.concat([Buffer.from([0x0a, inner.length]), inner]),
    });
    expect(binary.status).toBe(400);
    const get = await createClient(RegistryService, transports["connect+json over HTTP/1.1"]!(server.httpUrl)).getRegistry({ id: registryId });
    expect(get.description).toBe("before");
  });

  it("REST: a NUL in a JSON body or the query is 400 naming the field", async () => {
    const put = await adminFetch(`${server.httpUrl}/v1/registries/${registryId}?update_mask=description`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ description: "x\u0000y" }),
    });
    expect(put.status).toBe(400);
    expect(await put.json()).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/description/) as unknown });
    const list = await adminFetch(`${server.httpUrl}/v1/registries?query=${encodeURIComponent("\u0000")}`);
    expect(list.status).toBe(400);
  });

  describe("/v2/", () => {
    const registry = () => new RegistryClient(server.httpUrl);
    const repo = () => `${registryName}/team/app`;
    beforeAll(async () => {
      await registry().pushImage(repo(), "1.0");
    });

    it.each([
      ["tags/list?last=", () => `/v2/${repo()}/tags/list?last=a%00b`],
      ["tags/list?n=", () => `/v2/${repo()}/tags/list?n=1%00`],
      ["_catalog?last=", () => `/v2/_catalog?last=%00`],
      ["referrers?artifactType=", () => `/v2/${repo()}/referrers/sha256:${"a".repeat(64)}?artifactType=application%2Fx%00y`],
    ])("a control character in %s is 400, not a database error", async (_, path) => {
      const res = await registry().req("GET", path());
      expectOciError(res, 400, "UNSUPPORTED", /control characters/);
    });

    it("a tag outside the grammar (NUL, SQL, too long) never reaches the database: PUT 400 TAG_INVALID, GET and DELETE 404", async () => {
      const image = makeImage();
      for (const blob of image.blobs) await registry().uploadBlob(repo(), blob);
      for (const tag of ["a%00b", "%27%3B%20drop%20table%20registries%3B%20--%00", "x".repeat(129), ".hidden"]) {
        expectOciError(await registry().putManifest(repo(), tag, image.bytes, image.mediaType), 400, "TAG_INVALID");
        expectOciError(await registry().req("GET", `/v2/${repo()}/manifests/${tag}`), 404, "MANIFEST_UNKNOWN");
        expectOciError(await registry().req("DELETE", `/v2/${repo()}/manifests/${tag}`), 404, "MANIFEST_UNKNOWN");
      }
      expect((await registry().req("GET", `/v2/${repo()}/tags/list`)).json?.tags).toEqual(["1.0"]);
    });

    it("a manifest whose artifactType is not a media type is MANIFEST_INVALID", async () => {
      for (const artifactType of ["application/x\u0000y", "not a media type"]) {
        const image = makeImage({ artifactType });
        for (const blob of image.blobs) await registry().uploadBlob(repo(), blob);
        const res = await registry().putManifest(repo(), "bad", image.bytes, image.mediaType);
        expectOciError(res, 400, "MANIFEST_INVALID", /artifactType/);
      }
      // The tag pushed before is untouched.
      expect((await registry().req("GET", `/v2/${repo()}/tags/list`)).json?.tags).toEqual(["1.0"]);
    });
  });
});
