// The harness of the S3 store and replica tests, proven on its own: a throwaway Swift answers the S3
// calls the content driver relies on (as S3 does: multipart part-size rule, presigned URLs with
// Range, refused tampered signatures), Debian's docker-registry can keep its content there (the
// peer on identical storage), it stops without leaving a process behind, and the nginx
// balancer round-robins, passes Host and X-Forwarded-*, streams bodies both ways unbuffered,
// retries a request that never reached an upstream, and never replays a POST that did.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { request } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { haveNginx, startBalancer, type Balancer } from "./support/balancer.js";
import { startDistribution } from "./support/distribution.js";
import { smallImage } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { freePort } from "./support/postgres.js";
import { pullImage, pushImage } from "./support/skopeo.js";
import { haveS3TestServer, haveSwift, s3TestServer, startSwift } from "./support/swift.js";

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function s3Error(p: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3ServiceException) return err;
    throw err;
  }
  throw new Error("expected the S3 call to fail");
}

describe.skipIf(!haveS3TestServer("test/s3-harness.test.ts (Swift s3api)"))("Swift's s3api (the run's shared store, or one of its own)", () => {
  let swift: Awaited<ReturnType<typeof s3TestServer>>;
  let s3: S3Client;
  let bucket: string;

  beforeAll(async () => {
    swift = await s3TestServer();
    s3 = swift.client();
    bucket = await swift.createBucket();
  });

  afterAll(async () => {
    s3?.destroy();
    await swift?.stop();
  });

  it("stores and returns an object", async () => {
    const body = randomBytes(100_000);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "a/b", Body: body }));
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "a/b" }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
    expect(got.ContentLength).toBe(body.length);
  });

  it("completes a multipart upload of a 5 MiB part and a small last part", async () => {
    const parts = [randomBytes(5 * MiB), randomBytes(1000)];
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "mp" }));
    const etags = [];
    for (const [i, body] of parts.entries()) {
      const { ETag } = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: "mp", UploadId, PartNumber: i + 1, Body: body }));
      etags.push({ ETag, PartNumber: i + 1 });
    }
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: "mp", UploadId, MultipartUpload: { Parts: etags } }));
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "mp" }));
    expect(sha256(Buffer.from(await got.Body!.transformToByteArray()))).toBe(sha256(Buffer.concat(parts)));
  });

  it("refuses to complete an upload whose non-last part is under 5 MiB (EntityTooSmall)", async () => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "small" }));
    const etags = [];
    for (const n of [1, 2]) {
      const { ETag } = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: "small", UploadId, PartNumber: n, Body: randomBytes(1000) }));
      etags.push({ ETag, PartNumber: n });
    }
    const err = await s3Error(s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: "small", UploadId, MultipartUpload: { Parts: etags } })));
    expect(err.name).toBe("EntityTooSmall");
  });

  it("serves a presigned GET with Range and refuses a tampered signature", async () => {
    const body = randomBytes(4096);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "signed", Body: body }));
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: "signed" }), { expiresIn: 300 });
    expect(url).toContain("X-Amz-Signature=");

    const ranged = await fetch(url, { headers: { range: "bytes=100-199" } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(body.subarray(100, 200))).toBe(true);

    const tampered = url.replace(/X-Amz-Signature=([0-9a-f])/, (_, c: string) => `X-Amz-Signature=${c === "0" ? "1" : "0"}`);
    expect(tampered).not.toBe(url);
    const refused = await fetch(tampered);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("SignatureDoesNotMatch");
  });

  describe.skipIf(!havePeers("test/s3-harness.test.ts (docker-registry on S3)", "docker-registry", "skopeo"))("docker-registry on it", () => {
    it("stores what skopeo pushes in the bucket and serves it back", async () => {
      const registryBucket = await swift.createBucket("registry-");
      const registry = await startDistribution({ s3: { ...swift, bucket: registryBucket } });
      const pullDir = mkdtempSync(join(tmpdir(), "artifact-pull-"));
      try {
        const image = await smallImage("s3-harness");
        expect(await pushImage(image, registry, "harness/small", "v1")).toBe(image.digest);
        const pulled = await pullImage(registry, "harness/small", "v1", { dir: pullDir, transport: "oci" });
        expect(pulled.digest).toBe(image.digest);
        const listed = await s3.send(new ListObjectsV2Command({ Bucket: registryBucket, Prefix: "docker/registry/v2/blobs/" }));
        const keys = (listed.Contents ?? []).map((c) => c.Key);
        for (const blob of image.blobs) expect(keys).toContain(`docker/registry/v2/blobs/sha256/${blob.digest.slice(7, 9)}/${blob.digest.slice(7)}/data`);
      } finally {
        await registry.stop();
        rmSync(pullDir, { recursive: true, force: true });
      }
    });
  });
});

describe.skipIf(!haveSwift("test/s3-harness.test.ts (startSwift)"))("startSwift()", () => {
  it("starts a store that answers signed S3 requests, and stop() ends every process it started", { timeout: 180_000 }, async () => {
    const swift = await startSwift();
    const s3 = swift.client();
    try {
      const bucket = await swift.createBucket();
      expect(bucket).toMatch(/^t-[0-9a-f]{12}$/);
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "k", Body: "v" }));
      const groups = swift.processGroups();
      expect(groups.length).toBe(5); // memcached, account, container, object, proxy
      expect(groups.every(groupAlive)).toBe(true);
      s3.destroy();
      await swift.stop();
      expect(groups.filter(groupAlive)).toEqual([]);
      expect(existsSync(swift.dir)).toBe(false);
    } finally {
      s3.destroy();
      await swift.stop();
    }
  });
});

/** A tiny upstream that records what reaches it. */
interface Upstream {
  name: string;
  port: number;
  server: Server;
  seen: { method: string; url: string; headers: IncomingMessage["headers"] }[];
}

async function upstream(name: string, handle: (req: IncomingMessage, res: ServerResponse, up: Upstream) => void): Promise<Upstream> {
  const server = createServer();
  const up: Upstream = { name, port: 0, server, seen: [] };
  server.on("request", (req, res) => {
    up.seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    handle(req, res, up);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  up.port = (server.address() as AddressInfo).port;
  return up;
}

const echoName = (req: IncomingMessage, res: ServerResponse, up: Upstream) => {
  req.resume();
  req.once("end", () => res.end(up.name));
};

async function closeAll(...ups: (Upstream | undefined)[]): Promise<void> {
  for (const u of ups) {
    if (!u) continue;
    u.server.closeAllConnections();
    await new Promise((resolve) => u.server.close(resolve));
  }
}

describe.skipIf(!haveNginx("test/s3-harness.test.ts (nginx balancer)"))("the nginx balancer", () => {
  let a: Upstream;
  let b: Upstream;
  let balancer: Balancer;
  // What the streaming upstream has received so far, and who waits for how much of it.
  let received = 0;
  const waiters: { bytes: number; resolve: () => void }[] = [];
  let releaseResponse: () => void = () => {};
  // How much of a large response the upstream has managed to write so far.
  let written = 0;

  beforeAll(async () => {
    const handle = (req: IncomingMessage, res: ServerResponse, up: Upstream) => {
      if (req.url === "/stream-up") {
        const hash = createHash("sha256");
        received = 0;
        req.on("data", (chunk: Buffer) => {
          hash.update(chunk);
          received += chunk.length;
          for (const w of waiters.splice(0))
            if (received >= w.bytes) w.resolve();
            else waiters.push(w);
        });
        req.once("end", () => res.end(JSON.stringify({ name: up.name, bytes: received, sha256: hash.digest("hex") })));
      } else if (req.url === "/stream-down") {
        req.resume();
        res.writeHead(200, { "content-type": "text/plain" });
        res.write("first|");
        const released = new Promise<void>((resolve) => (releaseResponse = resolve));
        void released.then(() => res.end("second"));
      } else if (req.url === "/stream-down-large") {
        // 64 MiB, written only as fast as the connection to nginx takes it.
        req.resume();
        written = 0;
        res.writeHead(200, { "content-length": String(64 * MiB) });
        const piece = Buffer.alloc(64 * 1024, 7);
        const more = () => {
          while (written < 64 * MiB) {
            written += piece.length;
            if (!res.write(piece)) return void res.once("drain", more);
          }
          res.end();
        };
        more();
      } else if (req.url === "/headers") {
        req.resume();
        res.end(JSON.stringify(req.headers));
      } else echoName(req, res, up);
    };
    a = await upstream("a", handle);
    b = await upstream("b", handle);
    balancer = await startBalancer([a.port, b.port]);
  });

  afterAll(async () => {
    await balancer?.stop();
    await closeAll(a, b);
  });

  it("sends requests round-robin, nothing sticky, over kept-alive connections", async () => {
    const names = [];
    for (let i = 0; i < 6; i++) names.push(await (await fetch(`${balancer.url}/rr/${i}`)).text());
    expect(names.filter((n) => n === "a")).toHaveLength(3);
    expect(names.filter((n) => n === "b")).toHaveLength(3);
    for (let i = 1; i < names.length; i++) expect(names[i]).not.toBe(names[i - 1]);
    // HTTP/1.1 with an empty Connection header to the upstream: keep-alive, not "close".
    for (const s of [...a.seen, ...b.seen]) expect(s.headers.connection).toBeUndefined();
    const logged = balancer.requests().filter((r) => r.uri.startsWith("/rr/"));
    expect(logged).toHaveLength(6);
    // Each with nginx's own time for it (what benchmarks split a push by).
    for (const r of logged) expect(r.seconds).toBeGreaterThanOrEqual(0);
  });

  it("passes Host and X-Forwarded-*", async () => {
    const headers = (await (await fetch(`${balancer.url}/headers`)).json()) as Record<string, string>;
    expect(headers.host).toBe(balancer.host);
    expect(headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(headers["x-forwarded-proto"]).toBe("http");
    expect(headers["x-forwarded-host"]).toBe(balancer.host);
    expect(headers["x-forwarded-port"]).toBe(String(balancer.port));
  });

  it("streams a 20 MiB POST body through unbuffered, and a response as it is written", async () => {
    const body = randomBytes(20 * MiB);
    const chunk = 256 * 1024;
    // The client sends 1 MiB, then waits until the upstream has received it before sending more:
    // a balancer that buffered the request body would never pass it on, and this would time out.
    const reachedUpstream = (bytes: number) =>
      new Promise<void>((resolve, reject) => {
        if (received >= bytes) return resolve();
        waiters.push({ bytes, resolve });
        setTimeout(() => reject(new Error(`the upstream got ${received} of the first ${bytes} bytes: the body was buffered`)), 10_000).unref();
      });
    async function* source(): AsyncGenerator<Buffer> {
      for (let off = 0; off < body.length; off += chunk) {
        yield body.subarray(off, off + chunk);
        if (off + chunk === MiB) await reachedUpstream(MiB);
      }
    }
    const answer = await new Promise<string>((resolve, reject) => {
      const req = request(`${balancer.url}/stream-up`, { method: "POST", headers: { "content-length": String(body.length) } }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.once("end", () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`status ${res.statusCode}: ${text}`))));
      });
      req.once("error", reject);
      Readable.from(source()).once("error", reject).pipe(req);
    });
    const got = JSON.parse(answer) as { bytes: number; sha256: string };
    expect(got.bytes).toBe(body.length);
    expect(got.sha256).toBe(sha256(body));

    // Response direction: the upstream writes "first|" and waits; the client must see it before
    // the upstream finishes (a buffering balancer would hold it back until the end).
    const res = await fetch(`${balancer.url}/stream-down`);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(Buffer.from(first.value ?? []).toString()).toBe("first|");
    releaseResponse();
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += Buffer.from(r.value).toString();
    expect(rest).toBe("second");
  });

  it("does not spool a response the client is not reading", async () => {
    // A balancer that buffered responses would take the whole 64 MiB from the upstream into its
    // buffers and temp files while the client reads nothing; unbuffered, the upstream stalls once
    // the sockets' buffers are full.
    await new Promise<void>((resolve, reject) => {
      const req = request(`${balancer.url}/stream-down-large`, (res) => {
        void (async () => {
          let last = -1;
          while (written !== last) {
            last = written;
            await new Promise((r) => setTimeout(r, 500));
          }
          expect(written).toBeGreaterThan(0);
          expect(written).toBeLessThan(40 * MiB); // ~8 MiB here: the socket buffers on both hops
          let bytes = 0;
          res.on("data", (d: Buffer) => (bytes += d.length));
          res.once("end", () => (bytes === 64 * MiB ? resolve() : reject(new Error(`got ${bytes} bytes`))));
        })().catch(reject);
      });
      req.once("error", reject);
      req.end();
    });
  });

  it("passes a request that never reached an upstream to the next one (POST included)", async () => {
    const down = await freePort(); // nothing listens: connection refused, nothing sent
    const live = await upstream("live", echoName);
    const lb = await startBalancer([down, live.port]);
    try {
      for (let i = 0; i < 4; i++) {
        const res = await fetch(`${lb.url}/post/${i}`, { method: "POST", body: randomBytes(64 * 1024) });
        expect(await res.text()).toBe("live");
      }
      expect(live.seen.map((s) => s.url)).toEqual(["/post/0", "/post/1", "/post/2", "/post/3"]);
      expect(lb.requests().some((r) => r.upstreams.join() === `127.0.0.1:${down},127.0.0.1:${live.port}` && r.status === 200)).toBe(true);
    } finally {
      await lb.stop();
      await closeAll(live);
    }
  });

  it("never replays a POST that reached an upstream on another one; an idempotent GET it does", async () => {
    // An upstream that drops the connection as soon as a request arrives: the request was sent.
    const dropper = await upstream("dropper", (req) => req.socket.destroy());
    const live = await upstream("live", echoName);
    const lb = await startBalancer([dropper.port, live.port], { maxFails: 0 }); // keep the dropper in the rotation
    try {
      const status: Record<string, number> = {};
      for (const [method, n] of [
        ["POST", 4],
        ["GET", 4],
      ] as const) {
        for (let i = 0; i < n; i++) {
          const url = `/${method}/${i}`;
          const res = await fetch(`${lb.url}${url}`, { method, body: method === "POST" ? randomBytes(64 * 1024) : undefined });
          await res.arrayBuffer();
          status[url] = res.status;
        }
      }
      const dropped = dropper.seen.map((s) => s.url);
      const answered = live.seen.map((s) => s.url);
      expect(dropped.filter((u) => u.startsWith("/POST/")).length).toBe(2); // round-robin: every other one
      expect(dropped.filter((u) => u.startsWith("/GET/")).length).toBe(2);
      for (const url of dropped.filter((u) => u.startsWith("/POST/"))) {
        expect(status[url]).toBe(502);
        expect(answered).not.toContain(url);
      }
      for (let i = 0; i < 4; i++) expect(status[`/GET/${i}`]).toBe(200);
      for (const url of dropped.filter((u) => u.startsWith("/GET/"))) expect(answered).toContain(url);
    } finally {
      await lb.stop();
      await closeAll(dropper, live);
    }
  });

  it("stop() ends nginx and its workers", async () => {
    const lb = await startBalancer([a.port], { workers: 2 });
    expect((await fetch(lb.url)).status).toBe(200);
    expect(groupAlive(lb.processGroup)).toBe(true);
    await lb.stop();
    expect(groupAlive(lb.processGroup)).toBe(false);
    await expect(fetch(lb.url)).rejects.toThrow();
  });
});
