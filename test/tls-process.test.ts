// TLS through the real entry point (src/main.ts) as an operator runs it: TLS files that cannot
// serve stop the start with the variable named (exit 2, like every configuration error), and
// with WORKERS=2 on PostgreSQL every worker does its own handshakes, re-reads a replaced
// certificate and answers SIGHUP sent to the primary, and the primary closes a connection no
// worker can take instead of answering it in cleartext.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../src/paths.js";
import { createScratchDatabase } from "./support/database.js";
import { eventually } from "./support/grpc-clients.js";
import { havePeers } from "./support/peers.js";
import { freePort } from "./support/postgres.js";
import { TestPki, type TestCa, type TestCert } from "./support/tls.js";

const ready = havePeers("tls-process.test.ts", "openssl");
const MAIN = join(packageRoot, "src/main.ts");

/** Runs the entry point until it exits; for starts that must fail. */
function startExpectingFailure(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN], {
      env: { ...process.env, DATABASE_URL: "", DB_HOST: "", LOG_LEVEL: "info", HTTP_PORT: "0", GRPC_PORT: "0", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

function serialOn(port: number, ca: TestCa): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername: "localhost", ca: ca.pem }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.once("error", reject);
  });
}

describe.skipIf(!ready)("TLS through the entry point", { timeout: 180_000 }, () => {
  const pki = ready ? TestPki.create() : undefined!;
  let ca: TestCa;
  let good: TestCert;
  const dirs: string[] = [];
  beforeAll(() => {
    ca = pki.ca();
    good = pki.issue(ca, { commonName: "localhost" });
  });
  afterAll(() => {
    pki?.remove();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it.each([
    [
      "a key that is not the certificate's",
      () => ({ TLS_KEY_FILE: pki.issue(ca, { commonName: "localhost" }).keyFile }),
      /TLS_KEY_FILE: .+ is not the key of the certificate in .+ \(CN=localhost\)/,
    ],
    [
      "an expired certificate",
      () => {
        const expired = pki.issue(ca, { commonName: "localhost", notBefore: new Date("2020-01-01T00:00:00Z"), notAfter: new Date("2020-02-01T00:00:00Z") });
        return { TLS_CERT_FILE: expired.certFile, TLS_KEY_FILE: expired.keyFile };
      },
      /TLS_CERT_FILE: .+: the certificate expired on 2020-02-01T00:00:00.000Z/,
    ],
    [
      "a certificate file that is not PEM",
      () => {
        const file = pki.path("not-pem.crt");
        writeFileSync(file, "this is not a certificate\n");
        return { TLS_CERT_FILE: file };
      },
      /TLS_CERT_FILE: .+not-pem\.crt holds no PEM certificate/,
    ],
    [
      "a key file that is not PEM",
      () => {
        const file = pki.path("not-pem.key");
        writeFileSync(file, good.cert);
        return { TLS_KEY_FILE: file };
      },
      /TLS_KEY_FILE: .+not-pem\.key holds no PEM private key/,
    ],
    [
      "a certificate file that does not exist",
      () => ({ TLS_CERT_FILE: pki.path("missing.crt") }),
      /TLS_CERT_FILE: cannot read .+missing\.crt \(no such file\)/,
    ],
    [
      "a client CA file that is not PEM",
      () => {
        const file = pki.path("not-pem-ca.crt");
        writeFileSync(file, "garbage");
        return { TLS_CLIENT_CA_FILE: file };
      },
      /TLS_CLIENT_CA_FILE: .+ holds no PEM certificate/,
    ],
    // Root reads a file of mode 0000, so "unreadable" is a directory here.
    ["a key file that cannot be read", () => ({ TLS_KEY_FILE: pki.dir }), /TLS_KEY_FILE: cannot read .+ \(is a directory\)/],
    ["a key without its certificate", () => ({ TLS_CERT_FILE: "" }), /TLS_CERT_FILE: must be set together with TLS_KEY_FILE/],
    ["TLS_CLIENT_AUTH without a client CA", () => ({ TLS_CLIENT_AUTH: "optional" }), /TLS_CLIENT_AUTH: needs TLS_CLIENT_CA_FILE/],
  ])("%s stops the start with exit 2 and a message naming the variable", async (_what, env, message) => {
    const dataDir = mkdtempSync(join(tmpdir(), "artifact-tls-main-"));
    dirs.push(dataDir);
    const { code, stderr } = await startExpectingFailure({ DATA_DIR: dataDir, TLS_CERT_FILE: good.certFile, TLS_KEY_FILE: good.keyFile, ...env() });
    expect(code, stderr).toBe(2);
    expect(stderr).toMatch(/^artifact-service: invalid configuration:/);
    expect(stderr).toMatch(message);
    // The key's bytes never appear in the message.
    expect(stderr).not.toContain(good.key.split("\n")[1]);
  });

  it.skipIf(!process.env.TEST_DATABASE_URL)(
    "WORKERS=2 on PostgreSQL: both workers serve TLS, take a replaced certificate, answer SIGHUP; no worker ready is a clean close",
    async () => {
      const scratch = await createScratchDatabase();
      const dataDir = mkdtempSync(join(tmpdir(), "artifact-tls-main-"));
      dirs.push(dataDir);
      const live = pki.path("live-workers");
      mkdirSync(live);
      const certFile = join(live, "tls.crt");
      const keyFile = join(live, "tls.key");
      writeFileSync(certFile, good.cert);
      writeFileSync(keyFile, good.key);
      const [httpPort, grpcPort] = [await freePort(), await freePort()];
      let child: ChildProcess | undefined;
      try {
        child = spawn(process.execPath, ["--import", "tsx", MAIN], {
          env: {
            ...process.env,
            DATABASE_URL: scratch.url,
            DATA_DIR: dataDir,
            WORKERS: "2",
            LOG_LEVEL: "info",
            HTTP_PORT: String(httpPort),
            GRPC_PORT: String(grpcPort),
            TLS_CERT_FILE: certFile,
            TLS_KEY_FILE: keyFile,
          },
          stdio: ["ignore", "pipe", "pipe"],
        });
        const lines: string[] = [];
        let partial = "";
        child.stdout!.on("data", (d: Buffer) => {
          const text = partial + d.toString();
          const cut = text.lastIndexOf("\n");
          partial = text.slice(cut + 1);
          lines.push(
            ...text
              .slice(0, cut + 1)
              .split("\n")
              .filter(Boolean),
          );
        });
        child.stderr!.on("data", (d: Buffer) => lines.push(d.toString()));
        const exited = new Promise<number | null>((resolve) => child!.once("exit", (code) => resolve(code)));
        const records = () => lines.flatMap((l) => (l.startsWith("{") ? [JSON.parse(l) as Record<string, unknown>] : []));
        await eventually(
          () => records().some((r) => r.msg === "listening with 2 workers (gRPC, gRPC-Web, Connect and HTTP on both)"),
          "the service to listen",
          120_000,
        );

        // A connection per call (curl exits): the primary hands them to the workers in turn.
        const call = () =>
          new Promise<string>((resolve, reject) =>
            execFile("curl", ["-sS", "--max-time", "20", "--cacert", ca.certFile, `https://localhost:${httpPort}/v1/registries`], (err, stdout, stderr) =>
              err ? reject(new Error(`curl failed: ${stderr}`)) : resolve(stdout),
            ),
          );
        for (let i = 0; i < 6; i++) expect(await call()).toBe("{}");
        const served = records()
          .filter((r) => r.msg === "call")
          .map((r) => r.worker);
        expect(new Set(served)).toEqual(new Set([0, 1]));

        const next = pki.issue(ca, { commonName: "localhost" });
        writeFileSync(`${keyFile}.new`, next.key);
        renameSync(`${keyFile}.new`, keyFile);
        writeFileSync(`${certFile}.new`, next.cert);
        renameSync(`${certFile}.new`, certFile);
        const reloadedBy = () =>
          new Set(records().flatMap((r) => (r.msg === "TLS certificate reloaded" && r.fingerprint256 === next.fingerprint256 ? [r.worker] : [])));
        await eventually(() => reloadedBy().size === 2, "both workers to reload the certificate");
        for (let i = 0; i < 4; i++) expect(await serialOn(i % 2 ? grpcPort : httpPort, ca)).toBe(next.serialNumber);

        child.kill("SIGHUP");
        await eventually(
          () => new Set(records().flatMap((r) => (r.msg === "TLS files unchanged" && r.reason === "SIGHUP" ? [r.worker] : []))).size === 2,
          "both workers to answer SIGHUP",
        );
        expect(await call()).toBe("{}");

        // No worker ready: the primary, which holds no certificate, closes the connection cleanly
        // (a cleartext 503 would reach a TLS client as a protocol error: ERR_SSL_…).
        const workers = records().flatMap((r) => (r.msg === "worker ready" ? [r.pid as number] : []));
        expect(workers).toHaveLength(2);
        for (const pid of workers) process.kill(pid, "SIGKILL");
        const outcomes = new Set<string>();
        for (let i = 0; i < 40; i++) {
          outcomes.add(
            await serialOn(httpPort, ca).then(
              () => "served",
              (err: NodeJS.ErrnoException) => err.code ?? err.message,
            ),
          );
          await new Promise((r) => setTimeout(r, 50));
        }
        expect([...outcomes].filter((o) => o !== "served" && o !== "ECONNRESET")).toEqual([]);
        expect(outcomes.has("ECONNRESET")).toBe(true);
        const gone = new Set(workers);
        await eventually(
          () => new Set(records().flatMap((r) => (r.msg === "worker ready" && !gone.has(r.pid as number) ? [r.worker] : []))).size === 2,
          "both workers to be replaced",
          60_000,
        );
        expect(await serialOn(httpPort, ca)).toBe(next.serialNumber);

        child.kill("SIGTERM");
        expect(await exited).toBe(0);
      } finally {
        if (child && child.exitCode === null) child.kill("SIGKILL");
        await scratch.drop();
      }
    },
  );
});
