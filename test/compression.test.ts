// Response compression: on for the API (when the client offers it), never for blob bytes,
// which are compressed already and would only cost the event loop.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminFetch } from "./support/credentials.js";
import { startTestServer, type TestServer } from "./support/server.js";

describe("response compression", () => {
  let server: TestServer;
  const blob = Buffer.alloc(256 * 1024, "a"); // very compressible, so only a rule keeps it plain
  const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;

  beforeAll(async () => {
    server = await startTestServer("pglite");
    await adminFetch(`${server.httpUrl}/v1/registries`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "zip", kind: "REGISTRY_KIND_HOSTED" }),
    });
    const pushed = await adminFetch(`${server.httpUrl}/v2/zip/team/app/blobs/uploads/?digest=${digest}`, { method: "POST", body: blob });
    expect(pushed.status).toBe(201);
  });
  afterAll(() => server?.stop());

  it("streams GetBlob uncompressed even when the client accepts gzip", async () => {
    const message = Buffer.from(JSON.stringify({ repository: "zip/team/app", digest }));
    const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), message]);
    envelope.writeUInt32BE(message.length, 1);
    const res = await adminFetch(`${server.httpUrl}/artifact.v1.ImageService/GetBlob`, {
      method: "POST",
      headers: { "content-type": "application/connect+json", "connect-accept-encoding": "gzip", "connect-protocol-version": "1" },
      body: envelope,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("connect-content-encoding")).toBeNull();
    const body = Buffer.from(await res.arrayBuffer());
    // Every data frame has flag 0 (not compressed); the payload carries the blob.
    let at = 0;
    let bytes = 0;
    while (at < body.length) {
      const flags = body[at]!;
      const length = body.readUInt32BE(at + 1);
      if (flags === 0) bytes += Buffer.from((JSON.parse(body.subarray(at + 5, at + 5 + length).toString()) as { data: string }).data, "base64").length;
      else expect(flags).toBe(2); // end of stream
      at += 5 + length;
    }
    expect(bytes).toBe(blob.length);
  });

  it("still compresses other answers for a client that accepts gzip", async () => {
    for (let i = 0; i < 20; i++) {
      await adminFetch(`${server.httpUrl}/v1/registries`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: `zip-${i}`, kind: "REGISTRY_KIND_HOSTED", description: "a registry with a description long enough" }),
      });
    }
    const list = (encoding: string) =>
      adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/ListRegistries`, {
        method: "POST",
        headers: { "content-type": "application/json", "accept-encoding": encoding },
        body: "{}",
      });
    const zipped = await list("gzip");
    expect(zipped.status).toBe(200);
    expect(zipped.headers.get("content-encoding")).toBe("gzip");
    expect(((await zipped.json()) as { registries: unknown[] }).registries).toHaveLength(21);
    expect((await list("identity")).headers.get("content-encoding")).toBeNull();
  });
});
