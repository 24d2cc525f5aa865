// Independent clients for gRPC tests: @grpc/grpc-js (stubs from proto files via proto-loader)
// and the buf CLI's `buf curl`, both speaking gRPC over h2c to a real server.
import { execFile, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { packageRoot } from "../../src/paths.js";
import { ADMIN_AUTHORIZATION } from "./credentials.js";

export const bufBin = join(packageRoot, "node_modules", ".bin", "buf");

/** A grpc-js client class for `service` (e.g. "grpc.health.v1.Health") from a proto file in node_modules. */
export function grpcJsClient(protoRoot: string, file: string, service: string): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync(file, {
    includeDirs: [join(packageRoot, "node_modules", protoRoot)],
    keepCase: true,
    enums: String,
    defaults: true,
    longs: Number,
    oneofs: true,
  });
  let node: unknown = grpc.loadPackageDefinition(definition);
  for (const part of service.split(".")) node = (node as Record<string, unknown>)[part];
  if (typeof node !== "function") throw new Error(`${service} not found in ${file}`);
  return node as grpc.ServiceClientConstructor;
}

/** "http://127.0.0.1:1234" → "127.0.0.1:1234" for grpc-js. */
export function target(url: string): string {
  return new URL(url).host;
}

export interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The admin's token as grpc-js call metadata. */
export function adminMetadata(): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", ADMIN_AUTHORIZATION);
  return metadata;
}

/** `buf curl`'s header flag with the admin's token. */
const ADMIN_HEADER = ["-H", `authorization: ${ADMIN_AUTHORIZATION}`];

/** Runs `buf curl --protocol grpc --http2-prior-knowledge …args` as the admin; never throws on a non-zero exit. */
export function bufCurl(args: string[], timeoutMs = 30_000): Promise<CurlResult> {
  return bufCurlWith(["--protocol", "grpc", "--http2-prior-knowledge", ...ADMIN_HEADER, ...args], timeoutMs);
}

/** Runs `buf curl …args` as given (over TLS: `--cacert`, an https:// URL); never throws on a non-zero exit. */
export function bufCurlWith(args: string[], timeoutMs = 30_000): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    execFile(bufBin, ["curl", ...args], { timeout: timeoutMs, cwd: packageRoot }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") {
        const error: Error = err; // it is one; @types/node builds its type with Omit, which hides that from the linter
        return reject(error);
      }
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

/** A `buf curl` left running (a server stream); `output` grows as it prints. */
export function bufCurlStream(args: string[]): { child: ChildProcessWithoutNullStreams; output: () => string; exited: Promise<number | null> } {
  const child = spawn(bufBin, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...ADMIN_HEADER, ...args], { cwd: packageRoot });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** Polls `probe` until it returns true (or throws after `timeoutMs`). */
export async function eventually(probe: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
