// The TLS settings and the files they name: read, checked, and turned into what Node's TLS
// server takes. src/config.ts checks them once at start (a bad file stops the start, naming its
// variable); src/http/tls.ts reads them again whenever they change on disk (rotation).
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";

export type ClientAuth = "optional" | "require";

export interface TlsSettings {
  /** TLS_CERT_FILE: the server's certificate, then any intermediates (PEM). */
  certFile: string;
  /** TLS_KEY_FILE: the private key of the first certificate (PEM, unencrypted). */
  keyFile: string;
  /** TLS_CLIENT_CA_FILE: CA certificates that sign client certificates; set = mutual TLS. */
  clientCaFile?: string;
  /** TLS_CLIENT_AUTH: with a client CA, whether a client certificate is required or optional. */
  clientAuth: ClientAuth;
  /** TLS_HSTS_MAX_AGE_SECONDS: Strict-Transport-Security max-age; 0 sends no header. */
  hstsMaxAgeSeconds: number;
}

/** What the files held, checked: PEM text for Node's TLS context and facts for the log. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  subject: string;
  notAfter: Date;
  fingerprint256: string;
}

/** A file that cannot serve: which variable names it and what is wrong, never the key's bytes. */
export class TlsFileError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = "TlsFileError";
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const PEM_PRIVATE_KEY = /-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END \1?PRIVATE KEY-----/;

/** Reads and checks the certificate chain, its key and the client CA; throws TlsFileError. */
export function readTlsMaterial(settings: Pick<TlsSettings, "certFile" | "keyFile" | "clientCaFile">, now = new Date()): TlsMaterial {
  const cert = readPem("TLS_CERT_FILE", settings.certFile);
  const chain = certificates("TLS_CERT_FILE", settings.certFile, cert);
  chain.forEach((c, i) => {
    const what = i === 0 ? "the certificate" : `certificate ${i + 1} of the chain (${c.subject.replace(/\n/g, ", ")})`;
    const problem = validity(c, now);
    if (problem) throw new TlsFileError("TLS_CERT_FILE", `${settings.certFile}: ${what} ${problem}`);
  });
  const leaf = chain[0]!;

  const key = readPem("TLS_KEY_FILE", settings.keyFile);
  const keyText = key.toString("latin1");
  const match = PEM_PRIVATE_KEY.exec(keyText);
  if (!match) throw new TlsFileError("TLS_KEY_FILE", `${settings.keyFile} holds no PEM private key (-----BEGIN PRIVATE KEY-----)`);
  if (match[1] === "ENCRYPTED ") {
    throw new TlsFileError("TLS_KEY_FILE", `${settings.keyFile} is encrypted; give the key without a passphrase (openssl pkey -in … -out …)`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(match[0]);
  } catch (err) {
    throw new TlsFileError("TLS_KEY_FILE", `${settings.keyFile} is not a readable private key (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new TlsFileError(
      "TLS_KEY_FILE",
      `${settings.keyFile} is not the key of the certificate in ${settings.certFile} (${leaf.subject.replace(/\n/g, ", ")})`,
    );
  }

  let ca: Buffer | undefined;
  if (settings.clientCaFile) {
    ca = readPem("TLS_CLIENT_CA_FILE", settings.clientCaFile);
    const cas = certificates("TLS_CLIENT_CA_FILE", settings.clientCaFile, ca);
    if (!cas.some((c) => validity(c, now) === undefined)) {
      throw new TlsFileError("TLS_CLIENT_CA_FILE", `${settings.clientCaFile}: no certificate in it is valid now (${validity(cas[0]!, now)})`);
    }
  }
  return { cert, key, ca, subject: leaf.subject.replace(/\n/g, ", "), notAfter: new Date(leaf.validTo), fingerprint256: leaf.fingerprint256 };
}

function readPem(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : (code ?? String(err));
    throw new TlsFileError(variable, `cannot read ${file} (${why})`);
  }
}

function certificates(variable: string, file: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString("latin1").match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new TlsFileError(variable, `${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new TlsFileError(variable, `${file}: certificate ${i + 1} does not parse (${err instanceof Error ? err.message : String(err)})`);
    }
  });
}

function validity(cert: X509Certificate, now: Date): string | undefined {
  if (new Date(cert.validTo) <= now) return `expired on ${new Date(cert.validTo).toISOString()}`;
  if (new Date(cert.validFrom) > now) return `is not valid before ${new Date(cert.validFrom).toISOString()}`;
  return undefined;
}
