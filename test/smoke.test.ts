import { createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryKind, RegistryService } from "../gen/artifact/v1/registry_pb.js";
import { databaseKinds } from "./support/database.js";
import { startTestServer, transports, type TestServer } from "./support/server.js";

describe.each(databaseKinds())("smoke on %s", (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(kind);
  });
  afterAll(() => server?.stop());
  it.each(Object.keys(transports))("%s", async (name) => {
    const client = createClient(RegistryService, transports[name]!(server.httpUrl));
    const regName = `r${Math.random().toString(36).slice(2, 8)}`;
    const r = await client.createRegistry({ registry: { name: regName, kind: RegistryKind.HOSTED } });
    expect(r.name).toBe(regName);
  });
});
