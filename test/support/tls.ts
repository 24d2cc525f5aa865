// A test PKI made with Debian's openssl in a temp dir: CAs, server and client certificates (any
// validity window, expired ones included, through `openssl ca -startdate/-enddate`), and the
// directories container tools read (`certs.d/<host>/ca.crt`, `client.cert`, `client.key`).
// Keys are P-256 (fast to make; every client here speaks ECDSA).
import { execFileSync } from "node:child_process";
import { randomBytes, X509Certificate } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { peerBin } from "./peers.js";
import { removeWhenProcessEnds } from "./reaper.js";

export interface TestCa {
  name: string;
  certFile: string;
  keyFile: string;
  /** The CA certificate, PEM. */
  pem: string;
}

export interface TestCert {
  certFile: string;
  keyFile: string;
  /** PEM of the certificate (the chain file: the leaf only; CAs here sign leaves directly). */
  cert: string;
  key: string;
  serialNumber: string;
  fingerprint256: string;
}

export interface IssueOptions {
  commonName: string;
  /** Extra subject parts before the CN, e.g. "/O=Example". */
  subjectPrefix?: string;
  /** subjectAltName entries; default DNS:localhost and IP:127.0.0.1. */
  sans?: string[];
  /** Default "server". */
  usage?: "server" | "client";
  /** openssl date (YYYYMMDDHHMMSSZ) or a Date; default: now minus a minute. */
  notBefore?: Date;
  /** Default: one day after notBefore. */
  notAfter?: Date;
}

function openssl(args: string[]): string {
  try {
    return execFileSync(peerBin("openssl"), args, { stdio: ["ignore", "pipe", "pipe"] }).toString();
  } catch (err) {
    throw new Error(`openssl ${args[0]} failed: ${String((err as { stderr?: Buffer }).stderr ?? err)}`, { cause: err });
  }
}

/** `openssl req` arguments for a new, unencrypted P-256 key written to `keyFile`. */
const newP256Key = (keyFile: string) => ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyFile];

/** A new P-256 key and a self-signed certificate for `subject` (e.g. `/CN=name`), valid for `days`; `extensions` as `-addext` values. */
export function selfSigned(keyFile: string, certFile: string, subject: string, days: number, extensions: string[] = []): void {
  openssl(["req", "-x509", ...newP256Key(keyFile), "-out", certFile, "-subj", subject, "-days", String(days), ...extensions.flatMap((e) => ["-addext", e])]);
}

/** ASN.1 GeneralizedTime as `openssl ca` takes it. */
const asn1Time = (date: Date) =>
  date
    .toISOString()
    .replace(/[-:T]/g, "")
    .replace(/\.\d+Z$/, "Z");

export class TestPki {
  private count = 0;
  private constructor(readonly dir: string) {}

  /** A fresh PKI directory, removed when the process ends (or by `remove()`). */
  static create(): TestPki {
    const dir = mkdtempSync(join(tmpdir(), "artifact-pki-"));
    removeWhenProcessEnds(dir);
    return new TestPki(dir);
  }

  /** A self-signed CA valid for ten years. */
  ca(name = "Artifact Test CA"): TestCa {
    const base = join(this.dir, `ca-${++this.count}`);
    mkdirSync(base);
    const keyFile = join(base, "ca.key");
    const certFile = join(base, "ca.crt");
    selfSigned(keyFile, certFile, `/CN=${name}`, 3650, ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"]);
    mkdirSync(join(base, "db"));
    writeFileSync(join(base, "db", "index.txt"), "");
    // openssl wants an even number of hex digits; a random start keeps serials apart across CAs.
    writeFileSync(join(base, "db", "serial"), `${randomBytes(8).toString("hex")}\n`);
    writeFileSync(
      join(base, "ca.cnf"),
      [
        "[ca]",
        "default_ca = test",
        "[test]",
        `database = ${join(base, "db", "index.txt")}`,
        `new_certs_dir = ${join(base, "db")}`,
        `serial = ${join(base, "db", "serial")}`,
        "default_md = sha256",
        "policy = anything",
        "unique_subject = no",
        "copy_extensions = none",
        "[anything]",
        "commonName = supplied",
        "organizationName = optional",
        "",
      ].join("\n"),
    );
    return { name, certFile, keyFile, pem: readFileSync(certFile, "utf8") };
  }

  /** A certificate signed by `ca`, with its own new key. */
  issue(ca: TestCa, options: IssueOptions): TestCert {
    const base = join(this.dir, `cert-${++this.count}`);
    mkdirSync(base);
    const keyFile = join(base, "tls.key");
    const certFile = join(base, "tls.crt");
    const csr = join(base, "tls.csr");
    openssl(["req", ...newP256Key(keyFile), "-out", csr, "-subj", `${options.subjectPrefix ?? ""}/CN=${options.commonName}`]);
    const usage = options.usage ?? "server";
    const extensions = join(base, "ext.cnf");
    writeFileSync(
      extensions,
      [
        "[leaf]",
        "basicConstraints = critical,CA:FALSE",
        "keyUsage = critical,digitalSignature",
        `extendedKeyUsage = ${usage === "server" ? "serverAuth" : "clientAuth"}`,
        ...(usage === "server" ? [`subjectAltName = ${(options.sans ?? ["DNS:localhost", "IP:127.0.0.1"]).join(",")}`] : []),
        "",
      ].join("\n"),
    );
    const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
    const notAfter = options.notAfter ?? new Date(notBefore.getTime() + 24 * 3_600_000);
    openssl([
      "ca",
      "-batch",
      "-config",
      join(ca.certFile, "..", "ca.cnf"),
      "-cert",
      ca.certFile,
      "-keyfile",
      ca.keyFile,
      "-in",
      csr,
      "-out",
      certFile,
      "-notext",
      "-extfile",
      extensions,
      "-extensions",
      "leaf",
      "-startdate",
      asn1Time(notBefore),
      "-enddate",
      asn1Time(notAfter),
    ]);
    const cert = readFileSync(certFile, "utf8");
    const x509 = new X509Certificate(cert);
    return { certFile, keyFile, cert, key: readFileSync(keyFile, "utf8"), serialNumber: x509.serialNumber, fingerprint256: x509.fingerprint256 };
  }

  /**
   * A directory as docker, podman and skopeo read one (`certs.d/<host:port>/`, skopeo's
   * `--cert-dir`): `ca.crt`, and with a client certificate `client.cert` and `client.key`.
   */
  certDir(ca: TestCa, client?: TestCert): string {
    const dir = join(this.dir, `certs-${++this.count}`);
    mkdirSync(dir);
    copyFileSync(ca.certFile, join(dir, "ca.crt"));
    if (client) {
      copyFileSync(client.certFile, join(dir, "client.cert"));
      copyFileSync(client.keyFile, join(dir, "client.key"));
    }
    return dir;
  }

  /** A path in the PKI directory for files a test writes itself. */
  path(name: string): string {
    return join(this.dir, name);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
