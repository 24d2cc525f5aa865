// The OCI conformance workflows (test/oci-conformance.ts) against a test server in this process:
// on each database, as reggie sends bodies (chunked) and manifests deleted before blobs, and once
// on PGlite with every body's real Content-Length and blobs deleted first.
import { afterAll, beforeAll, describe } from "vitest";
import { ADMIN_TOKEN } from "./support/credentials.js";
import { databaseKinds, type DatabaseKind } from "./support/database.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { conformanceNames, ociConformanceWorkflows, type ConformanceSettings } from "./oci-conformance.js";

const base = conformanceNames;
const runs: (ConformanceSettings & { kind: DatabaseKind })[] = [
  ...databaseKinds().map((kind) => ({ kind, ...base, OCI_DELETE_MANIFEST_BEFORE_BLOBS: true, bodies: "chunked" as const })),
  { kind: "pglite", ...base, OCI_DELETE_MANIFEST_BEFORE_BLOBS: false, bodies: "length" },
];

describe.each(runs)("OCI conformance workflows on $kind (OCI_DELETE_MANIFEST_BEFORE_BLOBS=$OCI_DELETE_MANIFEST_BEFORE_BLOBS, bodies $bodies)", (settings) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(settings.kind);
  });
  // After the workflows' own afterAll (hooks after a suite run last-registered first).
  afterAll(() => server?.stop());
  ociConformanceWorkflows(settings, () => ({ url: server.httpUrl, adminToken: ADMIN_TOKEN }));
});
