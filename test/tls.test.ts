// TLS on both listeners, with certificates this test makes (test/support/tls.ts) and the clients
// operators use: skopeo with a cert dir and verification on, @grpc/grpc-js, `buf curl` with
// reflection, curl over HTTP/1.1 and HTTP/2, Node's own TLS client for what the handshake
// chooses; the typed client's browser entry in Chromium against an HTTPS origin. Rotation and
// mutual TLS too; the start-up checks and WORKERS=2 through the real entry point are in
// test/tls-process.test.ts.
import { execFile } from "node:child_process";
import { createHash, createPublicKey } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { join } from "node:path";
import tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/log.js";
import { packageRoot } from "../src/paths.js";
import type { TlsSettings } from "../src/tls.js";
import { CHROMIUM, CHROMIUM_ARGS, haveChromium, pageServer, runScenario, type PageServer } from "./support/browser.js";
import { ADMIN_AUTHORIZATION } from "./support/credentials.js";
import { databaseKinds } from "./support/database.js";
import { adminMetadata, bufCurlWith, eventually } from "./support/grpc-clients.js";
import { smallImage } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { ADMIN_TOKEN, startAuthServer } from "./support/identity.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { pullImage, pushImage } from "./support/skopeo.js";
import { TestPki, type TestCa, type TestCert } from "./support/tls.js";

const ready = havePeers("tls.test.ts", "openssl", "skopeo");

interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** curl, never throwing on a non-zero exit (its code says how a refused handshake failed). */
function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile("curl", ["-sS", "--max-time", "20", ...args], { encoding: "utf8" }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? -1) : 0, stdout, stderr }),
    );
  });
}

/** One fresh TLS connection: what the server presented and what the handshake settled on. */
function handshake(
  port: number,
  options: tls.ConnectionOptions = {},
): Promise<{ serialNumber: string; protocol: string | null; cipher: string; alpn: string | false | null; socket: tls.TLSSocket }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername: "localhost", ALPNProtocols: ["http/1.1"], ...options }, () => {
      resolve({
        serialNumber: socket.getPeerCertificate().serialNumber,
        protocol: socket.getProtocol(),
        cipher: socket.getCipher().name,
        alpn: socket.alpnProtocol,
        socket,
      });
    });
    socket.once("error", reject);
  });
}

/** Writes a certificate and key over the served files the way renewal tools do: new file, rename. */
function install(cert: TestCert, files: Pick<TlsSettings, "certFile" | "keyFile">): void {
  writeFileSync(`${files.keyFile}.new`, cert.key);
  renameSync(`${files.keyFile}.new`, files.keyFile);
  writeFileSync(`${files.certFile}.new`, cert.cert);
  renameSync(`${files.certFile}.new`, files.certFile);
}

function captureLog() {
  const lines: string[] = [];
  const log = createLogger("info", { write: (line: string) => void lines.push(line) });
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, records };
}

const definition = protoLoader.loadSync(["artifact/v1/registry.proto"], {
  includeDirs: [join(packageRoot, "proto"), join(packageRoot, "node_modules/google-proto-files")],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
});
type Callback = (err: grpc.ServiceError | null, res: { registries: { name: string }[] }) => void;
type RegistryClient = grpc.Client & { ListRegistries(req: unknown, cb: Callback): void };
const { RegistryService } = (
  grpc.loadPackageDefinition(definition) as unknown as { artifact: { v1: Record<string, new (a: string, c: grpc.ChannelCredentials) => RegistryClient> } }
).artifact.v1 as { RegistryService: new (a: string, c: grpc.ChannelCredentials) => RegistryClient };

describe.skipIf(!ready)("TLS", () => {
  const pki = ready ? TestPki.create() : undefined!;
  let ca: TestCa;
  let otherCa: TestCa;
  beforeAll(() => {
    ca = pki.ca("Artifact Test CA");
    otherCa = pki.ca("Someone Else's CA");
  });
  afterAll(() => pki?.remove());

  describe.each(databaseKinds())("on %s", (kind) => {
    let server: TestServer;
    let files: TlsSettings;
    let first: TestCert;
    const captured = captureLog();
    const base = () => `https://localhost:${server.http.port}`;

    beforeAll(async () => {
      first = pki.issue(ca, { commonName: "localhost" });
      const live = pki.path(`live-${kind}`);
      mkdirSync(live);
      files = { certFile: join(live, "tls.crt"), keyFile: join(live, "tls.key"), clientAuth: "require", hstsMaxAgeSeconds: 31_536_000 };
      install(first, files);
      server = await startTestServer(kind, { config: { tls: files }, log: captured.log });
      const created = await curl([
        "--cacert",
        ca.certFile,
        "-H",
        `authorization: ${ADMIN_AUTHORIZATION}`,
        "-H",
        "content-type: application/json",
        "-d",
        '{"name":"tls","kind":"REGISTRY_KIND_HOSTED"}',
        `${base()}/v1/registries`,
      ]);
      expect(created.stdout).toContain('"name":"tls"');
    });
    afterAll(async () => {
      await server?.stop();
    });

    it.each([
      ["--http1.1", "1.1"],
      ["--http2", "2"],
    ])("curl %s: verified against the CA, every response says Strict-Transport-Security", async (flag, version) => {
      for (const port of [server.http.port, server.grpc.port]) {
        const res = await curl([
          flag,
          "--cacert",
          ca.certFile,
          "-H",
          `authorization: ${ADMIN_AUTHORIZATION}`,
          "-i",
          "-w",
          "\n%{http_version}",
          `https://localhost:${port}/v1/registries`,
        ]);
        expect(res.code, res.stderr).toBe(0);
        expect(res.stdout.split("\n").at(-1)).toBe(version);
        expect(res.stdout).toMatch(/^strict-transport-security: max-age=31536000\r?$/im);
        expect(res.stdout).toContain('"name":"tls"');
      }
      // /v2/ and the probes are on the same port, and say it too.
      const v2 = await curl([flag, "--cacert", ca.certFile, "-H", `authorization: ${ADMIN_AUTHORIZATION}`, "-i", `${base()}/v2/`]);
      expect(v2.stdout).toMatch(/^HTTP\/[\d.]+ 200/);
      expect(v2.stdout).toMatch(/^strict-transport-security: /im);
    });

    it("speaks TLS only: a cleartext request gets no answer, an unknown CA fails verification", async () => {
      const cleartext = await curl([`http://localhost:${server.http.port}/healthz`]);
      expect(cleartext.code).not.toBe(0);
      expect(cleartext.stdout).toBe("");
      const untrusted = await curl(["--cacert", otherCa.certFile, `${base()}/healthz`]);
      expect(untrusted.code).toBe(60); // peer certificate cannot be authenticated with the given CA
    });

    it("TLS 1.2 at least, the server's cipher order, no renegotiation", async () => {
      await expect(handshake(server.http.port, { ca: ca.pem, maxVersion: "TLSv1.1", minVersion: "TLSv1" })).rejects.toThrow();
      // The client prefers AES-256; the server's order puts AES-128 first and wins.
      const tls12 = await handshake(server.http.port, {
        ca: ca.pem,
        maxVersion: "TLSv1.2",
        ciphers: "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256",
        honorCipherOrder: false,
      });
      expect(tls12.protocol).toBe("TLSv1.2");
      expect(tls12.cipher).toBe("ECDHE-ECDSA-AES128-GCM-SHA256");
      const refused = await new Promise<Error | null>((resolve) => {
        tls12.socket.once("error", resolve);
        const asked = tls12.socket.renegotiate({}, (err) => resolve(err ?? null));
        if (!asked) resolve(new Error("renegotiate() refused to start"));
      });
      tls12.socket.destroy();
      expect(refused).toBeInstanceOf(Error);
      const tls13 = await handshake(server.http.port, { ca: ca.pem });
      expect(tls13.protocol).toBe("TLSv1.3");
      tls13.socket.destroy();
    });

    it("skopeo pushes and pulls with --dest-cert-dir / --src-cert-dir, verification on", async () => {
      const image = await smallImage(`tls-${kind}`);
      const registry = { host: `localhost:${server.http.port}` };
      const certDir = pki.certDir(ca);
      const pushed = await pushImage(image, registry, "tls/team/app", "1.0", { destCertDir: certDir });
      expect(pushed).toBe(image.digest);
      const into = pki.path(`pulled-${kind}`);
      const pulled = await pullImage(registry, "tls/team/app", "1.0", { dir: into, transport: "oci" }, { srcCertDir: certDir });
      expect(pulled.digest).toBe(image.digest);
      // The same with a directory holding another CA: skopeo refuses, so verification was on.
      await expect(pushImage(image, registry, "tls/team/app", "1.1", { destCertDir: pki.certDir(otherCa) })).rejects.toThrow(
        /certificate signed by unknown authority/,
      );
    });

    it("@grpc/grpc-js calls over TLS with the CA", async () => {
      for (const port of [server.grpc.port, server.http.port]) {
        // The token as call credentials on the TLS channel: how grpc-js clients send one.
        const token = grpc.credentials.createFromMetadataGenerator((_params, callback) => callback(null, adminMetadata()));
        const client = new RegistryService(
          `localhost:${port}`,
          grpc.credentials.combineChannelCredentials(grpc.credentials.createSsl(Buffer.from(ca.pem)), token),
        );
        try {
          const res = await new Promise<{ registries: { name: string }[] }>((resolve, reject) =>
            client.ListRegistries({}, (err, r) => (err ? reject(err) : resolve(r))),
          );
          expect(res.registries.map((r) => r.name)).toContain("tls");
        } finally {
          client.close();
        }
      }
    });

    it("buf curl lists the services by reflection and calls one, with the CA", async () => {
      const url = `https://localhost:${server.grpc.port}`;
      const listed = await bufCurlWith(["--protocol", "grpc", "--cacert", ca.certFile, "--list-methods", url]);
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toContain("artifact.v1.RegistryService/ListRegistries");
      const called = await bufCurlWith([
        "--protocol",
        "grpc",
        "--cacert",
        ca.certFile,
        "-H",
        `authorization: ${ADMIN_AUTHORIZATION}`,
        "-d",
        "{}",
        `${url}/artifact.v1.RegistryService/ListRegistries`,
      ]);
      expect(called.code, called.stderr).toBe(0);
      expect(called.stdout).toContain('"name": "tls"');
    });

    it("a certificate replaced on disk serves the next connection; an open one keeps working", async () => {
      const session = http2.connect(base(), { ca: ca.pem });
      const get = (path: string) =>
        new Promise<number>((resolve, reject) => {
          const stream = session.request({ ":path": path });
          stream.on("response", (headers) => resolve(Number(headers[":status"])));
          stream.on("error", reject);
          stream.resume();
        });
      try {
        expect(await get("/healthz")).toBe(200);
        const openSerial = (session.socket as tls.TLSSocket).getPeerCertificate().serialNumber;
        expect(openSerial).toBe(first.serialNumber);

        const second = pki.issue(ca, { commonName: "localhost" });
        install(second, files);
        await eventually(async () => {
          const { serialNumber, socket } = await handshake(server.http.port, { ca: ca.pem });
          socket.destroy();
          return serialNumber === second.serialNumber;
        }, "the new certificate on new connections");
        // Both listeners take it, and the open session still answers on its old certificate.
        const other = await handshake(server.grpc.port, { ca: ca.pem });
        other.socket.destroy();
        expect(other.serialNumber).toBe(second.serialNumber);
        expect(await get("/v1/registries")).toBe(200);
        expect((session.socket as tls.TLSSocket).getPeerCertificate().serialNumber).toBe(first.serialNumber);
        expect(captured.records().some((r) => r.msg === "TLS certificate reloaded" && r.fingerprint256 === second.fingerprint256)).toBe(true);

        // A key that does not match (a renewal half-written) is refused: the previous pair stays.
        const third = pki.issue(ca, { commonName: "localhost" });
        writeFileSync(files.keyFile, third.key);
        await eventually(
          () => captured.records().some((r) => r.msg === "TLS files not reloaded: still serving the previous certificate"),
          "the refusal in the log",
        );
        const still = await handshake(server.http.port, { ca: ca.pem });
        still.socket.destroy();
        expect(still.serialNumber).toBe(second.serialNumber);
        writeFileSync(files.certFile, third.cert);
        await eventually(async () => {
          const { serialNumber, socket } = await handshake(server.http.port, { ca: ca.pem });
          socket.destroy();
          return serialNumber === third.serialNumber;
        }, "the completed renewal on new connections");
      } finally {
        session.close();
      }
    });
  });

  it("a stop does not wait for connections that never finished their handshake", { timeout: 60_000 }, async () => {
    const cert = pki.issue(ca, { commonName: "localhost" });
    // Ten minutes to drain: only the stop closing the silent connection itself ends this in time.
    const server = await startTestServer("pglite", {
      config: { shutdownTimeoutMs: 600_000, tls: { certFile: cert.certFile, keyFile: cert.keyFile, clientAuth: "require", hstsMaxAgeSeconds: 0 } },
    });
    const silent = net.connect(server.http.port, "127.0.0.1");
    await new Promise((resolve) => silent.once("connect", resolve));
    const closed = new Promise((resolve) => silent.once("close", resolve));
    await server.stop();
    await closed;
  });

  describe("mutual TLS", () => {
    let client: TestCert;
    let stranger: TestCert;
    const servers: TestServer[] = [];
    beforeAll(() => {
      client = pki.issue(ca, { commonName: "ci-bot", subjectPrefix: "/O=Example", usage: "client" });
      stranger = pki.issue(otherCa, { commonName: "intruder", usage: "client" });
    });
    afterAll(async () => {
      for (const s of servers) await s.stop();
    });

    async function start(clientAuth: "require" | "optional") {
      const cert = pki.issue(ca, { commonName: "localhost" });
      const captured = captureLog();
      const config = { tls: { certFile: cert.certFile, keyFile: cert.keyFile, clientCaFile: ca.certFile, clientAuth, hstsMaxAgeSeconds: 0 } };
      const server = await startTestServer("pglite", { config, log: captured.log });
      servers.push(server);
      return { server, captured, url: (path: string) => `https://localhost:${server.http.port}${path}` };
    }
    const withCert = (c: TestCert) => ["--cert", c.certFile, "--key", c.keyFile];
    const listConnect = ["-H", "content-type: application/json", "-d", "{}"];

    it("require: no certificate or another CA's is refused in the handshake; the CA's is served, over every way in", async () => {
      const { server, captured, url } = await start("require");
      const bare = await curl(["--cacert", ca.certFile, url("/healthz")]);
      expect(bare.code).not.toBe(0);
      expect(bare.stdout).toBe("");
      const foreign = await curl(["--cacert", ca.certFile, ...withCert(stranger), url("/healthz")]);
      expect(foreign.code).not.toBe(0);

      const rest = await curl(["--cacert", ca.certFile, ...withCert(client), "-w", "\n%{http_code}", url("/v1/registries")]);
      expect(rest.code, rest.stderr).toBe(0);
      expect(rest.stdout).toBe("{}\n200");
      // HSTS is off with TLS_HSTS_MAX_AGE_SECONDS=0.
      expect((await curl(["-i", "--cacert", ca.certFile, ...withCert(client), url("/healthz")])).stdout).not.toMatch(/strict-transport-security/i);
      const connect = await curl(["--http2", "--cacert", ca.certFile, ...withCert(client), ...listConnect, url("/artifact.v1.RegistryService/ListRegistries")]);
      expect(connect.code, connect.stderr).toBe(0);
      const subjects = captured
        .records()
        .filter((r) => r.msg === "call")
        .map((r) => r.clientSubject);
      expect(subjects).toEqual(["CN=ci-bot, O=Example", "CN=ci-bot, O=Example"]);
      // /v2/ names the certificate's subject on its lines too (a refused method is logged at info).
      expect((await curl(["-X", "POST", "--cacert", ca.certFile, ...withCert(client), url("/v2/")])).code).toBe(0);
      expect(
        captured
          .records()
          .filter((r) => r.msg === "registry request")
          .map((r) => r.clientSubject),
      ).toEqual(["CN=ci-bot, O=Example"]);

      // skopeo (as docker and podman) reads client.cert and client.key from the cert dir.
      const image = await smallImage("mtls");
      const created = await curl([
        "--cacert",
        ca.certFile,
        ...withCert(client),
        "-H",
        `authorization: ${ADMIN_AUTHORIZATION}`,
        "-H",
        "content-type: application/json",
        "-d",
        '{"name":"mtls","kind":"REGISTRY_KIND_HOSTED"}',
        "-w",
        "\n%{http_code}",
        url("/v1/registries"),
      ]);
      expect(created.stdout.split("\n").at(-1), created.stdout).toBe("200");
      const registry = { host: `localhost:${server.http.port}` };
      expect(await pushImage(image, registry, "mtls/team/app", "1.0", { destCertDir: pki.certDir(ca, client) })).toBe(image.digest);
      await expect(pushImage(image, registry, "mtls/team/app", "1.1", { destCertDir: pki.certDir(ca), retryTimes: 0 })).rejects.toThrow(/skopeo/);
    });

    it("optional: with and without a certificate both served, the verified subject is seen; an unverified one is closed", async () => {
      const { captured, url } = await start("optional");
      const anonymous = await curl(["--cacert", ca.certFile, ...listConnect, url("/artifact.v1.RegistryService/ListRegistries")]);
      expect(anonymous.code, anonymous.stderr).toBe(0);
      const identified = await curl([
        "--http2",
        "--cacert",
        ca.certFile,
        ...withCert(client),
        ...listConnect,
        url("/artifact.v1.RegistryService/ListRegistries"),
      ]);
      expect(identified.code, identified.stderr).toBe(0);
      const rest = await curl(["--cacert", ca.certFile, ...withCert(client), url("/v1/registries")]);
      expect(rest.code, rest.stderr).toBe(0);
      const calls = captured.records().filter((r) => r.msg === "call");
      expect(calls.map((r) => r.clientSubject)).toEqual([undefined, "CN=ci-bot, O=Example", "CN=ci-bot, O=Example"]);

      const foreign = await curl(["--cacert", ca.certFile, ...withCert(stranger), url("/healthz")]);
      expect(foreign.code).not.toBe(0);
      expect(foreign.stdout).toBe("");
      expect(captured.records().some((r) => r.msg === "client certificate not verified by TLS_CLIENT_CA_FILE: connection closed")).toBe(true);
    });
  });

  describe("a client certificate as an identity (auth on)", () => {
    it("a certificate whose CN names a robot signs in as it on the API, /v2/ and /auth/token; a user's name, an unknown one or none is anonymous", async () => {
      const cert = pki.issue(ca, { commonName: "localhost" });
      const user = pki.issue(ca, { commonName: "admin", usage: "client" });
      const nobody = pki.issue(ca, { commonName: "nobody-here", usage: "client" });
      const robot = pki.issue(ca, { commonName: "ci-bot", usage: "client" });
      const server = await startAuthServer("pglite", {
        config: { tls: { certFile: cert.certFile, keyFile: cert.keyFile, clientCaFile: ca.certFile, clientAuth: "optional", hstsMaxAgeSeconds: 0 } },
      });
      try {
        const url = (path: string) => `https://localhost:${server.http.port}${path}`;
        const call = (args: string[]) => curl(["-s", "-w", "\n%{http_code}", "--cacert", ca.certFile, ...args]);
        const created = await call([
          "-H",
          `authorization: Bearer ${ADMIN_TOKEN}`,
          "-H",
          "content-type: application/json",
          "-d",
          '{"name":"ci-bot","kind":"ACCOUNT_KIND_ROBOT"}',
          url("/v1/accounts"),
        ]);
        expect(created.stdout.split("\n").at(-1), created.stdout).toBe("200");

        const whoami = await call([...["--cert", robot.certFile, "--key", robot.keyFile], url("/v1/whoami")]);
        expect(whoami.stdout.split("\n").at(-1), whoami.stdout).toBe("200");
        expect(whoami.stdout).toContain('"ci-bot"');
        for (const other of [user, nobody]) {
          const refused = await call(["--cert", other.certFile, "--key", other.keyFile, url("/v1/whoami")]);
          expect(refused.stdout.split("\n").at(-1), `${other.certFile}: ${refused.stdout}`).toBe("401");
        }
        expect((await call([url("/v1/whoami")])).stdout.split("\n").at(-1)).toBe("401");

        // /v2/: signed in by the certificate, challenged without it.
        expect((await call(["--cert", robot.certFile, "--key", robot.keyFile, url("/v2/")])).stdout.split("\n").at(-1)).toBe("200");
        expect((await call([url("/v2/")])).stdout.split("\n").at(-1)).toBe("401");
        // The challenge sends clients to the token endpoint on this listener: https, not http.
        const challenged = await call(["-D", "-", "-o", "/dev/null", url("/v2/")]);
        expect(challenged.stdout).toMatch(new RegExp(`www-authenticate: Bearer realm="https://localhost:${server.http.port}/auth/token"`, "i"));
        // The token endpoint issues the robot's token to its certificate alone.
        const token = await call(["--cert", robot.certFile, "--key", robot.keyFile, url("/auth/token?service=artifact-service")]);
        expect(token.stdout.split("\n").at(-1), token.stdout).toBe("200");
        const jwt = (JSON.parse(token.stdout.split("\n")[0]!) as { token: string }).token;
        const claims = JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()) as { sub?: string };
        expect(claims.sub).toMatch(/^[0-9a-f-]{36}$/);
      } finally {
        await server.stop();
      }
    });
  });

  describe.skipIf(!haveChromium("tls.test.ts (browser)"))("the typed client in Chromium against an HTTPS origin", () => {
    let api: TestServer;
    let page: PageServer;
    let browser: import("playwright-core").Browser;
    beforeAll(async () => {
      const cert = pki.issue(ca, { commonName: "localhost" });
      // The page is served over HTTPS too (another origin: another port), with the same certificate.
      page = await pageServer({ cert: cert.cert, key: cert.key, host: "localhost" });
      const config = {
        tls: { certFile: cert.certFile, keyFile: cert.keyFile, clientAuth: "require" as const, hstsMaxAgeSeconds: 60 },
        cors: { allowedOrigins: [page.origin], maxAgeSeconds: 60 },
      };
      api = await startTestServer("pglite", { config });
      // Chromium trusts the certificate's key as it would a CA in its store (no NSS tools here):
      // everything else about the certificate (host name, dates, usage) is still checked.
      const spki = createHash("sha256")
        .update(createPublicKey(cert.cert).export({ type: "spki", format: "der" }))
        .digest("base64");
      const { chromium } = await import("playwright-core");
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${spki}`] });
    });
    afterAll(async () => {
      await browser?.close();
      await api?.stop();
      await page?.close();
    });

    it.each(["connect", "grpc-web"] as const)("calls the service over %s", async (protocol) => {
      const outcome = await runScenario(browser, page.origin, `https://localhost:${api.http.port}`, protocol, `https-${protocol}`);
      expect(outcome, outcome.error).toMatchObject({ ok: true, created: `https-${protocol}`, got: `https-${protocol}` });
    });

    it("refuses a certificate whose key it was not told to trust (so the trust above is what made it work)", async () => {
      const other = pki.issue(ca, { commonName: "localhost" });
      const stranger = await startTestServer("pglite", {
        config: {
          tls: { certFile: other.certFile, keyFile: other.keyFile, clientAuth: "require", hstsMaxAgeSeconds: 0 },
          cors: { allowedOrigins: [page.origin], maxAgeSeconds: 60 },
        },
      });
      try {
        const outcome = await runScenario(browser, page.origin, `https://localhost:${stranger.http.port}`, "connect", "https-refused");
        expect(outcome.ok).toBe(false);
      } finally {
        await stranger.stop();
      }
    });
  });
});
