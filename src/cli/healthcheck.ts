// `node dist/src/cli/healthcheck.js`: the container's HEALTHCHECK. Asks the service in this
// container whether it is ready (GET /readyz: the database answers) on HTTP_PORT, over TLS when
// TLS_CERT_FILE is set. Exit 0 ready, 1 not (the reason on stderr). It probes its own process
// over loopback, so the server's certificate is not verified: there is nothing to impersonate, and
// the certificate's names need not include 127.0.0.1. With TLS_CLIENT_AUTH=require the probe has no
// client certificate and fails: probe from outside with one instead (see README, Container).
import http from "node:http";
import https from "node:https";
import { loadConfig, loadDotEnv } from "../config.js";

const TIMEOUT_MS = 4_000;

function probe(): Promise<number> {
  loadDotEnv();
  const config = loadConfig();
  const options = { host: "127.0.0.1", port: config.http.port, path: "/readyz", timeout: TIMEOUT_MS };
  return new Promise((resolve, reject) => {
    const req = config.tls
      ? https.get({ ...options, servername: "localhost", rejectUnauthorized: false }, (res) => done(res))
      : http.get(options, (res) => done(res));
    const done = (res: http.IncomingMessage) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    };
    req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on("error", reject);
  });
}

probe().then(
  (status) => {
    if (status === 200) return;
    process.stderr.write(`healthcheck: /readyz answered ${status}\n`);
    process.exitCode = 1;
  },
  (err: unknown) => {
    process.stderr.write(`healthcheck: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
