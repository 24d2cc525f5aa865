// The verified client certificate of a request (mutual TLS), as every layer sees it. The edge
// (src/http/client-certificate.ts) reads it from the TLS connection; Connect calls carry it in
// their context under `clientCertificateKey`, so an interceptor of src/api/ (the access layer)
// reads it without knowing of sockets.
import { createContextKey } from "@connectrpc/connect";

export interface ClientCertificate {
  /** The subject in the certificate's order, as OpenSSL prints it: "O=Example, CN=ci-bot". */
  subject: string;
  /** The subject's CN, when it has one. */
  commonName?: string;
  /** The issuer, in the same form. */
  issuer: string;
  serialNumber: string;
  /** SHA-256 of the certificate, "AB:CD:…" (stable, unique: what an allow-list can name). */
  fingerprint256: string;
  notAfter: Date;
}

/** Set only when the client presented a certificate that TLS_CLIENT_CA_FILE verified. */
export const clientCertificateKey = createContextKey<ClientCertificate | undefined>(undefined, { description: "verified client certificate" });
