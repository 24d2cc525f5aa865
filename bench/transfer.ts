// Moving a big blob and timing it: curl (C), so the client takes as little of the shared CPU as
// it can, for raw HTTP GETs and for the Connect stream (its envelopes counted, not decoded); the
// Connect stream through the connect-node client in a worker process; and checked downloads
// (status, headers, sha256 of every byte; for the stream every message decoded and the end-of-stream
// message read) before anything is timed; and what a registry holds after a push.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { GetBlobRequestSchema, GetBlobResponseSchema, ImageService } from "../gen/artifact/v1/image_pb.js";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { BuiltImage } from "../test/support/oci-images.js";
import type { StreamJob, StreamResult } from "./load/stream-worker.js";

const run = promisify(execFile);

export interface Transfer {
  status: number;
  bytes: number;
  seconds: number;
  /** 10^6 bytes per second. */
  mbps: number;
  /** With `followRedirects`: redirects followed, and the seconds they took before the last request started. */
  redirects: number;
  redirectSeconds: number;
  error?: string;
}

export interface CurlOptions {
  method?: "GET" | "POST";
  headers?: Record<string, string>;
  /** Request body, sent as is. */
  dataFile?: string;
  /** CA file an https:// URL is verified against. */
  caFile?: string;
  /** Force an HTTP version (curl negotiates HTTP/2 over TLS by default). */
  httpVersion?: "1.1" | "2";
  /** Follow redirects (curl -L), e.g. a blob GET's 307 to the object store. */
  followRedirects?: boolean;
}

/** One request with curl, response body thrown away. */
export async function curlGet(url: string, o: CurlOptions = {}): Promise<Transfer> {
  const args = ["-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total} %{num_redirects} %{time_redirect}", "--max-time", "600"];
  if (o.followRedirects) args.push("-L");
  if (o.method === "POST") args.push("-X", "POST");
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push("-H", `${k}: ${v}`);
  if (o.dataFile) args.push("--data-binary", `@${o.dataFile}`);
  if (o.caFile) args.push("--cacert", o.caFile);
  if (o.httpVersion) args.push(o.httpVersion === "2" ? "--http2" : "--http1.1");
  args.push(url);
  try {
    const { stdout } = await run("curl", args);
    const [status, bytes, seconds, redirects, redirectSeconds] = stdout.trim().split(" ").map(Number) as [number, number, number, number, number];
    return { status, bytes, seconds, mbps: bytes / seconds / 1e6, redirects, redirectSeconds };
  } catch (err) {
    // curl exits non-zero on a transfer cut short (e.g. 18: partial file).
    const e = err as { stdout?: string; code?: number };
    const [status, bytes, seconds, redirects, redirectSeconds] = (e.stdout ?? "0 0 0 0 0").trim().split(" ").map(Number) as [
      number,
      number,
      number,
      number,
      number,
    ];
    return { status, bytes, seconds, mbps: NaN, redirects, redirectSeconds, error: `curl exit ${String(e.code)}` };
  }
}

/** `clients` GETs of the same URL at once; MB/s over all of them, from the first start to the last end. */
export async function curlMany(url: string, clients: number): Promise<{ transfers: Transfer[]; seconds: number; mbps: number }> {
  const t0 = performance.now();
  const transfers = await Promise.all(Array.from({ length: clients }, () => curlGet(url)));
  const seconds = (performance.now() - t0) / 1000;
  const bytes = transfers.reduce((n, t) => n + t.bytes, 0);
  return { transfers, seconds, mbps: bytes / seconds / 1e6 };
}

/**
 * What is wrong with a registry after `image` was pushed to `repo` as `latest`, or undefined: the
 * manifest by tag (status, Docker-Content-Digest) and a HEAD of every blob (status, size, digest).
 */
export async function pushedImageProblem(base: string, repo: string, image: BuiltImage): Promise<string | undefined> {
  const accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";
  const m = await fetch(`${base}/v2/${repo}/manifests/latest`, { headers: { accept } });
  await m.arrayBuffer();
  if (m.status !== 200 || m.headers.get("docker-content-digest") !== image.digest) {
    return `manifest GET: HTTP ${m.status}, digest ${m.headers.get("docker-content-digest")}, expected ${image.digest}`;
  }
  for (const blob of image.blobs) {
    const b = await fetch(`${base}/v2/${repo}/blobs/${blob.digest}`, { method: "HEAD" });
    if (b.status !== 200 || b.headers.get("content-length") !== String(blob.size) || b.headers.get("docker-content-digest") !== blob.digest) {
      return `blob HEAD ${blob.digest}: HTTP ${b.status}, ${b.headers.get("content-length")} bytes, digest ${b.headers.get("docker-content-digest")}`;
    }
  }
  return undefined;
}

/** A transfer that moved `size` bytes (with `framed`: more, for the envelopes around them) with status 200, or what was wrong with it. */
export function transferProblem(t: Transfer, size: number, framed = false): string | undefined {
  if (t.error) return `${t.error} after ${t.bytes} bytes (HTTP ${t.status})`;
  if (t.status !== 200) return `HTTP ${t.status}`;
  if (framed ? t.bytes <= size : t.bytes !== size) return `${t.bytes} bytes, expected ${framed ? "more than " : ""}${size}`;
  return undefined;
}

/** GETs `url` and hashes every byte; a problem (status, Content-Length, Docker-Content-Digest, digest) or undefined. */
export async function checkBlobDownload(url: string, digest: string, size: number): Promise<string | undefined> {
  const res = await fetch(url, { signal: AbortSignal.timeout(600_000) });
  if (res.status !== 200) return `GET ${url}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`;
  const length = res.headers.get("content-length");
  if (length !== String(size)) return `GET ${url}: Content-Length ${length}, expected ${size}`;
  const header = res.headers.get("docker-content-digest");
  if (header !== null && header !== digest) return `GET ${url}: Docker-Content-Digest ${header}, expected ${digest}`;
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  const actual = `sha256:${hash.digest("hex")}`;
  if (bytes !== size || actual !== digest) return `GET ${url}: ${bytes} bytes with digest ${actual}, expected ${size} bytes with ${digest}`;
  return undefined;
}

const streamWorker = fileURLToPath(new URL("./load/stream-worker.ts", import.meta.url));

/** GetBlob over Connect (server stream) from a worker process. */
export async function connectGetBlob(job: StreamJob): Promise<StreamResult & { mbps: number }> {
  const { stdout } = await run(process.execPath, ["--import", "tsx", streamWorker, JSON.stringify(job)], { maxBuffer: 1 << 20 });
  const result = JSON.parse(stdout.trim().split("\n").pop()!) as StreamResult;
  return { ...result, mbps: result.bytes / result.seconds / 1e6 };
}

export function streamProblem(r: StreamResult, digest: string, size: number): string | undefined {
  if (r.error) return `${r.error} after ${r.bytes} bytes`;
  if (r.sizeBytes !== size) return `size_bytes ${r.sizeBytes}, expected ${size}`;
  if (r.bytes !== size) return `${r.bytes} bytes, expected ${size}`;
  if (r.digest !== undefined && r.digest !== digest) return `digest ${r.digest}, expected ${digest}`;
  return undefined;
}

// ---- the Connect protocol by hand: one request, a stream of enveloped messages ----------------

export const GET_BLOB_PATH = `/${ImageService.typeName}/${ImageService.method.getBlob.name}`;
/** Binary Connect streaming without compression: what curl sends (it offers no connect-accept-encoding). */
export const CONNECT_STREAM_HEADERS = { "content-type": "application/connect+proto", "connect-protocol-version": "1" };

/** Writes the enveloped GetBlobRequest (flags 0, big-endian length, message) for curl --data-binary. */
export function writeGetBlobRequest(dir: string, repository: string, digest: string): string {
  const message = toBinary(GetBlobRequestSchema, create(GetBlobRequestSchema, { repository, digest }));
  const envelope = Buffer.alloc(5 + message.length);
  envelope.writeUInt32BE(message.length, 1);
  envelope.set(message, 5);
  const file = join(dir, `get-blob-${digest.slice(7, 19)}.bin`);
  writeFileSync(file, envelope);
  return file;
}

/** GetBlob as a Connect server stream, every message decoded and hashed: a problem, or undefined. */
export function checkConnectStream(baseUrl: string, repository: string, digest: string, size: number): Promise<string | undefined> {
  const message = toBinary(GetBlobRequestSchema, create(GetBlobRequestSchema, { repository, digest }));
  const envelope = Buffer.alloc(5 + message.length);
  envelope.writeUInt32BE(message.length, 1);
  envelope.set(message, 5);
  return new Promise((resolve) => {
    const req = http.request(
      new URL(GET_BLOB_PATH, baseUrl),
      { method: "POST", headers: { ...CONNECT_STREAM_HEADERS, "content-length": envelope.length } },
      (res) => {
        const hash = createHash("sha256");
        let parts: Buffer[] = [];
        let have = 0;
        let head: { flags: number; length: number } | undefined;
        let messages = 0;
        let bytes = 0;
        let announced = -1;
        let end: string | undefined;
        let problem: string | undefined;
        const ct = res.headers["content-type"];
        if (res.statusCode !== 200 || ct !== "application/connect+proto") problem = `HTTP ${res.statusCode}, Content-Type ${ct}`;
        res.on("data", (chunk: Buffer) => {
          parts.push(chunk);
          have += chunk.length;
          for (;;) {
            const need = head ? head.length : 5;
            if (have < need) break;
            // One copy per message at most: join what arrived only once a whole envelope is there.
            const joined = parts.length === 1 ? parts[0]! : Buffer.concat(parts, have);
            const piece = joined.subarray(0, need);
            const rest = joined.subarray(need);
            parts = rest.length > 0 ? [rest] : [];
            have = rest.length;
            if (!head) {
              head = { flags: piece[0]!, length: piece.readUInt32BE(1) };
              continue;
            }
            if (head.flags & 0b10) end = piece.toString("utf8");
            else {
              const m = fromBinary(GetBlobResponseSchema, piece);
              if (messages++ === 0) announced = Number(m.sizeBytes);
              if (Number(m.offset) !== bytes) problem ??= `message ${messages} at offset ${m.offset}, expected ${bytes}`;
              hash.update(m.data);
              bytes += m.data.length;
            }
            head = undefined;
          }
        });
        res.on("end", () => {
          const actual = `sha256:${hash.digest("hex")}`;
          if (!problem && end === undefined) problem = "the stream ended without its end-of-stream message";
          if (!problem && end !== undefined && (JSON.parse(end) as { error?: unknown }).error) problem = `the stream ended with ${end}`;
          if (!problem && announced !== size) problem = `size_bytes ${announced}, expected ${size}`;
          if (!problem && (bytes !== size || actual !== digest)) problem = `${bytes} bytes with digest ${actual}, expected ${size} bytes with ${digest}`;
          resolve(problem ? `Connect GetBlob: ${problem}` : undefined);
        });
        res.on("error", (err) => resolve(`Connect GetBlob: ${err.message}`));
      },
    );
    req.on("error", (err) => resolve(`Connect GetBlob: ${err.message}`));
    req.end(envelope);
  });
}
