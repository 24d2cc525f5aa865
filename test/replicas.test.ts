// Three replicas of the service as separate processes (test/support/replica.ts: the real entry
// point, their own ports and DATA_DIRs, nothing shared on disk) over one PostgreSQL database and
// one S3 bucket (Swift's s3api), behind Debian's nginx as a round-robin load balancer with no
// sticky sessions (test/support/balancer.ts). Through the balancer, and on the replicas' own ports
// where a test must choose the replica:
//   - the OCI conformance workflows (test/oci-conformance.ts), every request on any replica;
//   - skopeo push of an image whose layers are over one S3 part (multipart), pull, copy;
//   - one chunked upload whose POST, PATCHes and PUT are each sent to another replica;
//   - pushes and pulls of one repository on every replica at once, then every replica agrees;
//     how soon a tag moved through one replica is served by another (the read cache's notices);
//   - a replica killed (SIGKILL) mid-PATCH: the client asks where the upload stands and resumes
//     on another replica; a replica killed during a skopeo push;
//   - garbage collection run on two replicas at once (one runs, the other is ABORTED), and a
//     collection that deletes a blob's objects from the bucket.
// The replicas' writer lease is 5 s here (test/support/writer-lease.ts) instead of 30 s.
// Needs PostgreSQL (TEST_DATABASE_URL), nginx and Swift (or S3_TEST_ENDPOINT); skipped loudly without.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import postgres from "postgres";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GarbageCollectionService, type RunGarbageCollectionResponse } from "../gen/artifact/v1/garbage_collection_pb.js";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import { conformanceNames, ociConformanceWorkflows } from "./oci-conformance.js";
import { haveNginx, startBalancer, type Balancer } from "./support/balancer.js";
import { ADMIN_BASIC, ADMIN_TOKEN, adminInterceptor } from "./support/credentials.js";
import { createScratchDatabase } from "./support/database.js";
import { identityClients } from "./support/identity.js";
import { buildImage, fileDigest, layoutBlobPath, type BuiltImage, type ImageSpec } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { expectOciError, makeImage, pathOf, RegistryClient, sha256, withDigest, type PushedImage } from "./support/registry-client.js";
import { startReplicas, type Replica, type ReplicaSet } from "./support/replica.js";
import { dockerRef, pullImage, pushImage, skopeoCopy, skopeoInspectRaw } from "./support/skopeo.js";
import { haveS3TestServer, s3TestServer } from "./support/swift.js";
import { packageRoot } from "../src/paths.js";

const SUITE = "test/replicas.test.ts";
const MiB = 1024 * 1024;
const WRITER_LEASE_MS = 5_000;
const REGISTRY = "replicas";

function haveDatabase(): boolean {
  if (process.env.TEST_DATABASE_URL) return true;
  console.warn(`\n!!! ${SUITE}: SKIPPED, TEST_DATABASE_URL is not set: replicas share one PostgreSQL (an embedded PGlite belongs to one process)\n`);
  return false;
}
// Each check warns loudly, naming what is missing.
const ready = [haveDatabase(), haveNginx(SUITE), haveS3TestServer(SUITE)].every(Boolean);
const haveSkopeo = ready && havePeers(SUITE, "skopeo");

/** An image of three layers, two of them over one S3 part (5 MiB here), uncompressed so it builds fast. */
function bigImageSpec(seed: string): ImageSpec {
  const big = (name: string, size: number) => ({
    compression: "none" as const,
    files: [
      { path: "data", type: "dir" as const },
      { path: `data/${name}`, type: "file" as const, content: { seed: `${seed}/${name}`, size } },
    ],
  });
  return {
    name: `replicas-${seed}`,
    images: [
      {
        platform: { os: "linux", architecture: "amd64" },
        layers: [{ files: [{ path: "etc/seed", type: "file", content: `${seed}\n` }] }, big("a.bin", 17 * MiB + 5), big("b.bin", 23 * MiB + 7)],
      },
    ],
  };
}

/** A request whose body the test streams piece by piece; `outcome` is what the client finally saw. */
function streamingRequest(baseUrl: string, method: string, path: string, headers: Record<string, string>) {
  const url = new URL(baseUrl);
  let req!: ClientRequest;
  const outcome = new Promise<{ status: number; headers: IncomingHttpHeaders; body: string } | { error: string }>((resolve) => {
    req = httpRequest({ host: url.hostname, port: url.port, method, path, headers: { authorization: ADMIN_BASIC, ...headers } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", (err) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: `${body} (cut: ${err.message})` }));
    });
    req.on("error", (err: NodeJS.ErrnoException) => resolve({ error: `${err.code ?? "error"}: ${err.message}` }));
  });
  return {
    outcome,
    write: (bytes: Buffer) => new Promise<void>((resolve) => req.write(bytes, () => resolve())),
    destroy: () => req.destroy(),
  };
}

/** The replicas with a /v2/ upload request in flight now (their own /metrics). */
async function replicasUploading(replicas: Replica[]): Promise<Replica[]> {
  const busy: Replica[] = [];
  for (const replica of replicas) {
    if (!replica.running()) continue;
    const text = await fetch(`${replica.url}/metrics`)
      .then((r) => r.text())
      .catch(() => "");
    const uploading = text
      .split("\n")
      .some((line) => line.startsWith("artifact_http_requests_in_flight{") && /route="upload"/.test(line) && Number(line.split(" ").pop()) > 0);
    if (uploading) busy.push(replica);
  }
  return busy;
}

async function until<T>(what: string, check: () => Promise<T | undefined>, ms: number, every = 25): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const ms = (n: number) => Math.round(n);

describe.skipIf(!ready)("three replicas behind a round-robin balancer, one PostgreSQL, one bucket", { timeout: 120_000 }, () => {
  let s3: Awaited<ReturnType<typeof s3TestServer>>;
  let bucket: string;
  let bucketClient: S3Client;
  let scratch: { url: string; drop(): Promise<void> };
  let sql: postgres.Sql;
  let set: ReplicaSet;
  let replicas: Replica[];
  let lb: Balancer;
  let viaLb: RegistryClient;
  /** The figures this run measured, printed at the end. */
  const figures: Record<string, unknown> = {};

  beforeAll(async () => {
    const started = performance.now();
    s3 = await s3TestServer();
    bucket = await s3.createBucket("replicas-");
    bucketClient = s3.client();
    scratch = await createScratchDatabase();
    sql = postgres(scratch.url, { max: 2, onnotice: () => {} });
    set = await startReplicas(3, {
      databaseUrl: scratch.url,
      s3: { ...s3, bucket },
      // The smallest part S3 allows, so modest blobs are multipart uploads with tails between appends.
      env: { S3_PART_SIZE_MB: "5", ARTIFACT_TEST_WRITER_LEASE_MS: String(WRITER_LEASE_MS) },
      imports: [join(packageRoot, "test/support/writer-lease.ts")],
    });
    replicas = set.replicas;
    lb = await startBalancer(replicas.map((r) => r.port));
    viaLb = new RegistryClient(lb.url);
    await identityClients(lb.url, ADMIN_TOKEN).registries.createRegistry({ registry: { name: REGISTRY, kind: RegistryKind.HOSTED } });
    figures["start-up (S3 store, database, 3 replicas, balancer), ms"] = ms(performance.now() - started);
  }, 300_000);

  afterAll(async () => {
    console.info(`\n${SUITE} figures:\n${JSON.stringify(figures, null, 2)}\n`);
    await lb?.stop();
    await set?.stop();
    await sql?.end();
    await scratch?.drop();
    bucketClient?.destroy();
    await s3?.stop();
  });

  const onReplica = (r: Replica) => new RegistryClient(r.url);
  const gcOn = (r: Replica) =>
    createClient(GarbageCollectionService, createConnectTransport({ baseUrl: r.url, httpVersion: "1.1", interceptors: [adminInterceptor] }));

  /** The index object of a blob and the data object it names (see src/content/s3.ts). */
  async function objectsOf(digest: string): Promise<{ index: string; data: string; etag: string }> {
    const hex = digest.slice("sha256:".length);
    const index = `blobs/sha256/${hex.slice(0, 2)}/${hex}`;
    const head = await bucketClient.send(new HeadObjectCommand({ Bucket: bucket, Key: index }));
    const data = `data/${head.Metadata?.data}`;
    const dataHead = await bucketClient.send(new HeadObjectCommand({ Bucket: bucket, Key: data }));
    return { index, data, etag: dataHead.ETag ?? "" };
  }

  async function bucketKeys(): Promise<Set<string>> {
    const keys = new Set<string>();
    let token: string | undefined;
    do {
      const page = await bucketClient.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) keys.add(o.Key!);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  describe("the OCI conformance workflows through the balancer", () => {
    let started = 0;
    let firstRequest = 0;
    beforeAll(() => {
      started = performance.now();
      firstRequest = lb.requests().length;
    });
    ociConformanceWorkflows({ ...conformanceNames, OCI_DELETE_MANIFEST_BEFORE_BLOBS: true, bodies: "chunked" }, () => ({
      url: lb.url,
      adminToken: ADMIN_TOKEN,
    }));
    it("sent the suite's requests to every replica", () => {
      figures["conformance workflows through the balancer, ms"] = ms(performance.now() - started);
      const sent = lb.requests().slice(firstRequest);
      const perReplica = replicas.map((r) => sent.filter((q) => q.upstreams.includes(`127.0.0.1:${r.port}`)).length);
      figures["conformance requests per replica"] = perReplica;
      for (const n of perReplica) expect(n).toBeGreaterThan(sent.length / 6);
    });
  });

  describe.skipIf(!haveSkopeo)("skopeo through the balancer", () => {
    let image: BuiltImage;
    const repo = `${REGISTRY}/team/big`;
    beforeAll(async () => {
      image = await buildImage(bigImageSpec("push"));
    });

    it("pushes an image whose layers are multipart uploads on S3, pulls it back whole, copies it to another repository", async () => {
      const host = { host: lb.host };
      let t = performance.now();
      expect(await pushImage(image, host, repo, "v1")).toBe(image.digest);
      figures["skopeo push of 40 MiB (3 layers) through the balancer, ms"] = ms(performance.now() - t);

      // Every layer over a part went to the bucket as a multipart upload (its ETag says how many parts).
      for (const layer of image.manifests[0]!.layers.filter((l) => l.size > 5 * MiB)) {
        expect((await objectsOf(layer.digest)).etag).toMatch(/-\d+"?$/);
      }

      const dir = mkdtempSync(join(tmpdir(), "artifact-replicas-pull-"));
      try {
        t = performance.now();
        const pulled = await pullImage(host, repo, "v1", { dir, transport: "oci" });
        figures["skopeo pull of it through the balancer, ms"] = ms(performance.now() - t);
        expect(pulled.digest).toBe(image.digest);
        for (const blob of image.blobs) expect(await fileDigest(join(dir, "blobs", "sha256", blob.digest.slice(7)))).toBe(blob.digest);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }

      t = performance.now();
      const copied = await skopeoCopy(dockerRef(host, repo, "v1"), dockerRef(host, `${REGISTRY}/other/copy`, "v1"));
      figures["skopeo copy between two repositories through the balancer, ms"] = ms(performance.now() - t);
      expect(copied.digest).toBe(image.digest);
      expect(await skopeoInspectRaw(dockerRef(host, `${REGISTRY}/other/copy`, "v1"))).toEqual(image.bytes);

      // The push's requests went to more than one replica.
      const uploads = lb.requests().filter((q) => q.uri.startsWith(`/v2/${repo}/blobs/uploads/`));
      expect(new Set(uploads.flatMap((q) => q.upstreams)).size).toBeGreaterThan(1);
    });
  });

  describe("one chunked upload across the replicas", () => {
    it("POST on A, PATCH on B, PATCH on C, PUT on A, with chunks that are no multiple of the part size: the blob verifies", async () => {
      const [a, b, c] = replicas.map(onReplica) as [RegistryClient, RegistryClient, RegistryClient];
      const repo = `${REGISTRY}/team/chunked`;
      const chunks = [randomBytes(3 * MiB), randomBytes(7 * MiB + 1), randomBytes(1)];
      const blob = Buffer.concat(chunks);
      const digest = sha256(blob);

      const start = await a.req("POST", `/v2/${repo}/blobs/uploads/`);
      expect(start.status, start.body.toString()).toBe(202);
      const location = pathOf(start.headers.get("location"));
      let offset = 0;
      for (const [client, chunk] of [
        [b, chunks[0]!],
        [c, chunks[1]!],
      ] as const) {
        const res = await client.req("PATCH", location, {
          headers: { "content-type": "application/octet-stream", "content-range": `${offset}-${offset + chunk.length - 1}` },
          body: chunk,
        });
        expect(res.status, res.body.toString()).toBe(202);
        offset += chunk.length;
        expect(res.headers.get("range")).toBe(`0-${offset - 1}`);
        // Every replica knows where the upload stands.
        for (const other of [a, b, c]) expect((await other.req("GET", location)).headers.get("range")).toBe(`0-${offset - 1}`);
      }
      const put = await a.req("PUT", withDigest(location, digest), {
        headers: { "content-type": "application/octet-stream", "content-range": `${offset}-${offset}` },
        body: chunks[2],
      });
      expect(put.status, put.body.toString()).toBe(201);

      const got = await viaLb.req("GET", `/v2/${repo}/blobs/${digest}`);
      expect(got.status).toBe(200);
      expect(got.body.equals(blob)).toBe(true);
      for (const r of [a, b, c]) {
        const head = await r.req("HEAD", `/v2/${repo}/blobs/${digest}`);
        expect([head.status, head.headers.get("content-length")]).toEqual([200, String(blob.length)]);
      }
      // The bytes are one data object, assembled from parts and the tails between appends.
      expect((await objectsOf(digest)).etag).toMatch(/-\d+"?$/);
      const { data } = await objectsOf(digest);
      expect([...(await bucketKeys())].filter((k) => k.startsWith("uploads/") && k.includes(location.split("/").pop()!))).toEqual([]);
      expect(data).toMatch(/^data\//);
    });
  });

  describe("one repository pushed and pulled on every replica at once", () => {
    const repo = `${REGISTRY}/team/busy`;
    const images: PushedImage[] = Array.from({ length: 6 }, () => makeImage({ layerBytes: 256 * 1024 }));

    it("six tags pushed through three replicas while the others pull: every replica then serves every tag and the same tags/list", async () => {
      const clients = replicas.map(onReplica);
      const pushed = new Map<string, string>();
      let pushing = true;
      const pulls = { answered: 0, found: 0 };
      const puller = async (client: RegistryClient) => {
        while (pushing) {
          const list = await client.req("GET", `/v2/${repo}/tags/list`);
          expect([200, 404]).toContain(list.status);
          for (const tag of list.json?.tags ?? []) {
            const res = await client.req("GET", `/v2/${repo}/manifests/${tag}`);
            pulls.answered++;
            // A tag listed is served, and never with another tag's manifest.
            expect(res.status, `${tag}: ${res.body.toString()}`).toBe(200);
            expect(res.headers.get("docker-content-digest")).toBe(images[Number(tag.slice(1))]!.digest);
            pulls.found++;
          }
        }
      };
      const pullers = clients.map(puller);
      await Promise.all(
        images.map(async (image, i) => {
          const client = clients[i % clients.length]!;
          for (const blob of image.blobs) await client.uploadBlob(repo, blob);
          const res = await client.putManifest(repo, `t${i}`, image.bytes, image.mediaType);
          expect(res.status, res.body.toString()).toBe(201);
          pushed.set(`t${i}`, image.digest);
        }),
      );
      pushing = false;
      await Promise.all(pullers);
      figures["manifest pulls answered during the concurrent pushes"] = pulls.answered;

      const tags = [...pushed.keys()].sort();
      for (const client of clients) {
        expect((await client.req("GET", `/v2/${repo}/tags/list`)).json?.tags).toEqual(tags);
        for (const [tag, digest] of pushed) {
          const res = await client.req("GET", `/v2/${repo}/manifests/${tag}`);
          expect([res.status, res.headers.get("docker-content-digest")]).toEqual([200, digest]);
        }
      }
    });

    it("a tag moved or added through one replica is served by another soon after (the read cache hears the database's notices)", async () => {
      const clients = replicas.map(onReplica);
      const moved: number[] = [];
      const listed: number[] = [];
      let movedFirstRead = 0;
      let listedFirstRead = 0;
      const rounds = 12;
      expect((await clients[0]!.putManifest(repo, "moving", images[5]!.bytes, images[5]!.mediaType)).status).toBe(201);
      for (let k = 0; k < rounds; k++) {
        const writer = clients[k % 3]!;
        const reader = clients[(k + 1) % 3]!;
        const image = images[k % images.length]!;
        // The reader has the old answers in memory: twice, so a cache that fills on a miss holds them.
        for (let i = 0; i < 2; i++) {
          await reader.req("GET", `/v2/${repo}/manifests/moving`);
          await reader.req("GET", `/v2/${repo}/tags/list`);
        }
        const res = await writer.putManifest(repo, "moving", image.bytes, image.mediaType);
        expect(res.status).toBe(201);
        let t = performance.now();
        let reads = 0;
        await until(
          "the moved tag on another replica",
          async () => {
            reads++;
            const got = await reader.req("GET", `/v2/${repo}/manifests/moving`);
            return got.headers.get("docker-content-digest") === image.digest ? true : undefined;
          },
          10_000,
          5,
        );
        moved.push(performance.now() - t);
        if (reads === 1) movedFirstRead++;

        const tag = `n${k}`;
        expect((await writer.putManifest(repo, tag, image.bytes, image.mediaType)).status).toBe(201);
        t = performance.now();
        reads = 0;
        await until(
          "the new tag in another replica's tags/list",
          async () => {
            reads++;
            const got = await reader.req("GET", `/v2/${repo}/tags/list`);
            return got.json?.tags?.includes(tag) ? true : undefined;
          },
          10_000,
          5,
        );
        listed.push(performance.now() - t);
        if (reads === 1) listedFirstRead++;
      }
      figures["tag moved on one replica → served by another (201 to the right answer), ms"] = {
        median: ms(median(moved)),
        max: ms(Math.max(...moved)),
        rightOnFirstRead: `${movedFirstRead}/${rounds}`,
      };
      figures["tag added on one replica → in another's tags/list, ms"] = {
        median: ms(median(listed)),
        max: ms(Math.max(...listed)),
        rightOnFirstRead: `${listedFirstRead}/${rounds}`,
      };
      // "Soon": a generous bound for a loaded machine; the figures above are the measurement.
      expect(Math.max(...moved, ...listed)).toBeLessThan(5_000);
    });
  });

  describe("a replica killed mid-upload", () => {
    // A failed test leaves its victim down; the tests after it need all three.
    afterEach(async () => {
      for (const r of replicas) if (!r.running()) await r.start();
    });

    it("mid-PATCH through the balancer: the client asks where the upload stands, resumes on another replica, and the blob verifies", async () => {
      const repo = `${REGISTRY}/team/resume`;
      const blob = randomBytes(40 * MiB + 12_345);
      const digest = sha256(blob);
      const start = await viaLb.req("POST", `/v2/${repo}/blobs/uploads/`);
      expect(start.status).toBe(202);
      const location = pathOf(start.headers.get("location"));
      const first = 6 * MiB + 3;
      const patched = await viaLb.req("PATCH", location, {
        headers: { "content-type": "application/octet-stream", "content-range": `0-${first - 1}` },
        body: blob.subarray(0, first),
      });
      expect(patched.status).toBe(202);

      // The rest in one PATCH whose body the test holds back after 12 MiB, until it knows which replica has it.
      const rest = blob.subarray(first);
      const doomed = streamingRequest(lb.url, "PATCH", location, {
        "content-type": "application/octet-stream",
        "content-range": `${first}-${blob.length - 1}`,
        "content-length": String(rest.length),
      });
      await doomed.write(rest.subarray(0, 12 * MiB));
      const [victim] = await until(
        "a replica receiving the PATCH",
        async () => {
          const busy = await replicasUploading(replicas);
          return busy.length > 0 ? busy : undefined;
        },
        30_000,
      );
      const killedAt = performance.now();
      await victim!.kill();
      void doomed.write(rest.subarray(12 * MiB)).catch(() => undefined);
      const seen = await doomed.outcome;
      doomed.destroy();
      figures["the client of the killed PATCH saw"] = "error" in seen ? seen.error : `${seen.status} ${seen.body.slice(0, 200)}`;
      // Not an answer of the service: the balancer's (the replica is gone), or a cut connection.
      if (!("error" in seen)) expect(seen.status).toBe(502);

      // Where the upload stands, from any replica: the killed append counts for nothing.
      const status = await viaLb.req("GET", location);
      expect(status.status).toBe(204);
      expect(status.headers.get("range")).toBe(`0-${first - 1}`);

      // Resume from there. While the dead replica's lease lasts, another writer is refused with a
      // 416 that says where the upload stands and to continue from there; never a 500.
      const answers: string[] = [];
      let resumed;
      for (;;) {
        resumed = await viaLb.req("PATCH", location, {
          headers: { "content-type": "application/octet-stream", "content-range": `${first}-${blob.length - 1}` },
          body: rest,
        });
        if (resumed.status === 202) break;
        expectOciError(resumed, 416, "BLOB_UPLOAD_INVALID", /being written by another request; ask for its status and continue from there/);
        expect(resumed.headers.get("range")).toBe(`0-${first - 1}`);
        expect(resumed.headers.get("location")).toBe(location);
        answers.push(`${resumed.status} ${resumed.json?.errors?.[0]?.code}: ${resumed.json?.errors?.[0]?.message}`);
        expect(performance.now() - killedAt, "the dead writer's lease ran out").toBeLessThan(WRITER_LEASE_MS * 3);
        await sleep(250);
      }
      figures["resumed PATCH after the kill: refusals, then accepted after (ms)"] = {
        refused: answers.length,
        first: answers[0],
        acceptedAfterMs: ms(performance.now() - killedAt),
      };
      expect(resumed.headers.get("range")).toBe(`0-${blob.length - 1}`);
      const put = await viaLb.req("PUT", withDigest(location, digest));
      expect(put.status, put.body.toString()).toBe(201);
      const got = await viaLb.req("GET", `/v2/${repo}/blobs/${digest}`);
      expect(got.body.equals(blob)).toBe(true);

      await victim!.start();
      expect((await onReplica(victim!).req("HEAD", `/v2/${repo}/blobs/${digest}`)).status).toBe(200);
    });

    // Up to two pushes of the big image, one with retries after a replica died: minutes on a busy machine.
    it.skipIf(!haveSkopeo)(
      "during a skopeo push through the balancer: skopeo's retry, or a second run, pushes the image whole",
      { timeout: 360_000 },
      async () => {
        const image = await buildImage(bigImageSpec("killed"));
        const repo = `${REGISTRY}/team/killed`;
        const host = { host: lb.host };
        const push = pushImage(image, host, repo, "v1", { retryTimes: 3 }).then(
          (digest) => ({ digest }),
          (err: unknown) => ({ err: err as Error }),
        );
        const [victim] = await until(
          "a replica receiving a layer",
          async () => {
            const busy = await replicasUploading(replicas);
            return busy.length > 0 ? busy : undefined;
          },
          60_000,
          10,
        );
        await victim!.kill();
        const first = await push;
        let outcome = "skopeo's own retry pushed it";
        if ("err" in first) {
          outcome = `skopeo failed (${first.err.message
            .split("\n")
            .find((l) => /error|fail/i.test(l))
            ?.slice(0, 300)}); a second run pushed it`;
          expect(await pushImage(image, host, repo, "v1")).toBe(image.digest);
        } else {
          expect(first.digest).toBe(image.digest);
        }
        figures["a replica killed during a skopeo push"] = outcome;
        await victim!.start();
        // Every replica serves the image whole.
        for (const r of replicas) {
          const client = onReplica(r);
          const manifest = await client.req("GET", `/v2/${repo}/manifests/v1`, { headers: { accept: image.mediaType } });
          expect(manifest.body.equals(image.bytes)).toBe(true);
          for (const b of image.blobs) {
            const res = await client.req("GET", `/v2/${repo}/blobs/${b.digest}`);
            expect([res.status, sha256(res.body)]).toEqual([200, b.digest]);
          }
        }
        expect(await fileDigest(layoutBlobPath(image, image.blobs[0]!.digest))).toBe(image.blobs[0]!.digest);
      },
    );
  });

  describe("garbage collection with several replicas", () => {
    it("run on two replicas at once: one collects, the other is refused as ABORTED", async () => {
      const outcomes: string[] = [];
      for (let attempt = 0; attempt < 5 && !outcomes.includes("aborted"); attempt++) {
        const runs = await Promise.allSettled([gcOn(replicas[0]!).runGarbageCollection({}), gcOn(replicas[1]!).runGarbageCollection({})]);
        const round = runs.map((r) => {
          if (r.status === "fulfilled") return "ran";
          const err = r.reason as ConnectError;
          expect(err).toBeInstanceOf(ConnectError);
          expect(err.code, err.message).toBe(Code.Aborted);
          expect(err.rawMessage).toMatch(/already running/);
          return "aborted";
        });
        // Never both refused: one of them holds the lock.
        expect(round).toContain("ran");
        outcomes.push(...round);
      }
      expect(outcomes).toContain("aborted");
    });

    it("a deleted image's blobs, past the grace period, are deleted from the bucket: index and data objects", async () => {
      const repo = `${REGISTRY}/team/gc`;
      const image = makeImage({ layerBytes: 6 * MiB + 1 });
      for (const blob of image.blobs) await viaLb.uploadBlob(repo, blob);
      expect((await viaLb.putManifest(repo, "v1", image.bytes, image.mediaType)).status).toBe(201);
      const digests = image.blobs.map(sha256);
      const objects = await Promise.all(digests.map(objectsOf));
      const before = await bucketKeys();
      for (const o of objects) expect([before.has(o.index), before.has(o.data)]).toEqual([true, true]);

      expect((await viaLb.req("DELETE", `/v2/${repo}/manifests/${image.digest}`)).status).toBe(202);
      // Past GC_GRACE_MS (an hour) without waiting an hour.
      await sql`update blobs set push_time = now() - interval '2 hours' where digest in ${sql(digests)}`;
      const report: RunGarbageCollectionResponse = await gcOn(replicas[2]!).runGarbageCollection({});
      expect(Number(report.blobsDeleted)).toBeGreaterThanOrEqual(2);
      expect(report.sampleDigests).toEqual(expect.arrayContaining(digests));

      const after = await bucketKeys();
      for (const o of objects) expect([after.has(o.index), after.has(o.data)]).toEqual([false, false]);
      for (const r of replicas) {
        for (const d of digests) expectOciError(await onReplica(r).req("GET", `/v2/${repo}/blobs/${d}`), 404, "BLOB_UNKNOWN");
      }
    });
  });

  describe("afterwards", () => {
    it("no replica answered 5xx or logged an error, and every replica is serving", async () => {
      const failed = replicas.flatMap((r) => r.log().filter((l) => l.msg === "registry request" && Number(l.status) >= 500));
      expect(failed).toEqual([]);
      const errors = replicas.flatMap((r) => r.log().filter((l) => l.level >= 50));
      expect(errors).toEqual([]);
      // What clients got from the balancer itself: a 502 only while a replica was being killed.
      figures["5xx answers of the balancer"] = lb
        .requests()
        .filter((q) => q.status >= 500)
        .map((q) => `${q.method} ${q.uri.replace(/\?.*/, "")} ${q.status} (upstreams ${q.upstreamStatuses.join(", ")})`);
      for (const r of replicas) expect((await fetch(`${r.url}/readyz`)).status).toBe(200);
    });
  });
});
