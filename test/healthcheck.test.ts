// The container's HEALTHCHECK (src/cli/healthcheck.ts) run as Docker runs it: a process with the
// container's environment, against a live server over HTTP and over TLS, and against nothing.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../src/paths.js";
import { havePeers } from "./support/peers.js";
import { freePort } from "./support/postgres.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { TestPki } from "./support/tls.js";

const run = promisify(execFile);

/** Runs the healthcheck with `env` (HTTP_PORT, TLS_*); its exit status and stderr. */
async function healthcheck(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  return run(process.execPath, ["--import", "tsx", join(packageRoot, "src/cli/healthcheck.ts")], {
    cwd: packageRoot,
    timeout: 30_000,
    // Only what a container would set: no .env of the developer's, no DATABASE_URL.
    env: { PATH: process.env.PATH, DATA_DIR: "/nonexistent", ...env },
  }).then(
    ({ stderr }) => ({ code: 0, stderr }),
    (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
  );
}

describe("the container healthcheck", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer("pglite");
  });
  afterAll(() => server?.stop());

  it("exits 0 while the service is ready, 1 naming the reason when nothing answers", async () => {
    expect(await healthcheck({ HTTP_PORT: String(server.http.port) })).toEqual({ code: 0, stderr: "" });
    const nothing = await healthcheck({ HTTP_PORT: String(await freePort()) });
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toMatch(/^healthcheck: .*ECONNREFUSED/);
  });

  it.skipIf(!havePeers("test/healthcheck.test.ts (TLS part)", "openssl"))("speaks TLS when TLS_CERT_FILE is set", async () => {
    const pki = TestPki.create();
    const ca = pki.ca();
    const cert = pki.issue(ca, { commonName: "localhost" });
    const tls = await startTestServer("pglite", {
      config: { tls: { certFile: cert.certFile, keyFile: cert.keyFile, clientAuth: "optional", hstsMaxAgeSeconds: 0 } },
    });
    try {
      const env = { HTTP_PORT: String(tls.http.port), TLS_CERT_FILE: cert.certFile, TLS_KEY_FILE: cert.keyFile };
      expect(await healthcheck(env)).toEqual({ code: 0, stderr: "" });
      // Cleartext to a TLS listener gets no answer: the probe must know.
      expect((await healthcheck({ HTTP_PORT: String(tls.http.port) })).code).toBe(1);
    } finally {
      await tls.stop();
      pki.remove();
    }
  });
});
