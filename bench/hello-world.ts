// The ceiling of one Node process on this machine: a bare `node:http` server in a process of its
// own answering every request with the same fixed body, loaded the same way as the service.
import { spawn } from "node:child_process";

export interface HelloWorld {
  url: string;
  pid: number;
  body: Buffer;
  stop(): Promise<void>;
}

const SCRIPT = `
const body = Buffer.from(process.env.HELLO_BODY, "base64");
const headers = { "content-type": "application/json", "content-length": body.length };
const server = require("node:http").createServer((req, res) => { res.writeHead(200, headers); res.end(req.method === "HEAD" ? undefined : body); });
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => process.stdout.write(server.address().port + "\\n"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
`;

/** `body`: what every answer carries (the bench gives it a manifest's size). */
export function startHelloWorld(body: Buffer): Promise<HelloWorld> {
  const child = spawn(process.execPath, ["-e", SCRIPT], { env: { HELLO_BODY: body.toString("base64") }, stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`hello-world server exited (${code})`)));
    child.stdout.once("data", (d: Buffer) => {
      resolve({
        url: `http://127.0.0.1:${d.toString().trim()}`,
        pid: child.pid!,
        body,
        async stop() {
          child.kill("SIGTERM");
          await exited;
        },
      });
    });
  });
}
