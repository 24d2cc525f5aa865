// ImageService.GetBlob as a Connect server stream (binary, HTTP/1.1), in its own process, by the
// connect-node client a Node user would use, with its defaults (it offers gzip and br):
//   node --import tsx stream-worker.ts '{"baseUrl":…,"repository":…,"digest":…,"verify":true}'
// prints one JSON line: the blob bytes received, the seconds from the call to the end of the
// stream, and with verify the sha256 of the bytes (hashing costs CPU, so measured runs skip it).
import { createHash } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ImageService } from "../../gen/artifact/v1/image_pb.js";

export interface StreamJob {
  baseUrl: string;
  repository: string;
  digest: string;
  verify: boolean;
}

export interface StreamResult {
  bytes: number;
  seconds: number;
  /** size_bytes of the first message. */
  sizeBytes: number;
  messages: number;
  /** sha256:… of the bytes, with verify. */
  digest?: string;
  error?: string;
}

async function run(job: StreamJob): Promise<StreamResult> {
  const client = createClient(ImageService, createConnectTransport({ baseUrl: job.baseUrl, httpVersion: "1.1", useBinaryFormat: true }));
  const hash = job.verify ? createHash("sha256") : undefined;
  let bytes = 0;
  let messages = 0;
  let sizeBytes = -1;
  const t0 = performance.now();
  try {
    for await (const m of client.getBlob({ repository: job.repository, digest: job.digest })) {
      if (messages++ === 0) sizeBytes = Number(m.sizeBytes);
      bytes += m.data.length;
      hash?.update(m.data);
    }
  } catch (err) {
    return { bytes, seconds: (performance.now() - t0) / 1000, sizeBytes, messages, error: String(err) };
  }
  const seconds = (performance.now() - t0) / 1000;
  return { bytes, seconds, sizeBytes, messages, ...(hash ? { digest: `sha256:${hash.digest("hex")}` } : {}) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await run(JSON.parse(process.argv[2]!) as StreamJob);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
