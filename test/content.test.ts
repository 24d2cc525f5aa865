// Content drivers: the shared conformance suite for each, then what only the filesystem driver
// promises (atomic visibility, no leftovers, no path traversal, uploads that survive a killed write),
// the guard that cuts a body that stops sending, and a full disk.
import { spawnSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { watchBody } from "../src/content/body.js";
import { createContentDriver, FilesystemDriver, MemoryDriver } from "../src/content/index.js";
import { packageRoot } from "../src/paths.js";
import { chunked, collect, contentDriverConformance, expectDomainError, readAll, sha256, sha512 } from "./content-conformance.js";
import { canMountTmpfs, Tmpfs } from "./support/tmpfs.js";

async function filesystemSubject() {
  const dataDir = await mkdtemp(join(tmpdir(), "content-test-"));
  const root = join(dataDir, "blobs");
  const driver = (await createContentDriver({ dataDir })) as FilesystemDriver;
  return {
    driver,
    dataDir,
    root,
    cleanup: () => rm(dataDir, { recursive: true, force: true }),
    restart: async () => new FilesystemDriver(root),
  };
}

contentDriverConformance("filesystem", filesystemSubject);
contentDriverConformance("memory", async () => ({ driver: new MemoryDriver(), cleanup: async () => undefined, holdsBytesInMemory: true }));

describe("filesystem driver", () => {
  let fs: Awaited<ReturnType<typeof filesystemSubject>>;
  const blobFile = (digest: string): string => {
    const [algorithm, hex] = digest.split(":") as [string, string];
    return join(fs.root, algorithm, hex.slice(0, 2), hex);
  };
  const tempFiles = (): Promise<string[]> => readdir(join(fs.root, "tmp"));

  beforeEach(async () => {
    fs = await filesystemSubject();
  });
  afterEach(async () => {
    await fs.cleanup();
  });

  it("creates its layout under DATA_DIR/blobs and stores blobs content addressed", async () => {
    expect(fs.driver.name).toBe("filesystem");
    expect((await readdir(fs.root)).sort()).toEqual(["sha256", "sha512", "tmp", "uploads"]);
    const bytes = Buffer.from("addressed by content");
    await fs.driver.write(sha256(bytes), Readable.from([bytes]));
    expect((await stat(blobFile(sha256(bytes)))).size).toBe(bytes.length);
  });

  it("never shows a partial blob at its final path while the write is in flight", async () => {
    const bytes = randomBytes(4 * 1024 * 1024);
    const digest = sha256(bytes);
    let paused!: () => void;
    const reachedPause = new Promise<void>((r) => (paused = r));
    let resume!: () => void;
    const resumed = new Promise<void>((r) => (resume = r));
    const body = (async function* () {
      yield bytes.subarray(0, 3 * 1024 * 1024);
      paused();
      await resumed;
      yield bytes.subarray(3 * 1024 * 1024);
    })();

    const writing = fs.driver.write(digest, body, bytes.length);
    await reachedPause;
    // Let the driver flush what it has: the bytes are on disk, but elsewhere.
    await new Promise((r) => setTimeout(r, 100));
    const temps = await tempFiles();
    expect(temps).toHaveLength(1);
    expect((await stat(join(fs.root, "tmp", temps[0]!))).size).toBeGreaterThan(0);
    expect(existsSync(blobFile(digest))).toBe(false);
    expect(await fs.driver.stat(digest)).toBeUndefined();
    await expectDomainError(fs.driver.read(digest), "not-found", "blob-unknown");
    expect(await collect(fs.driver.list())).toEqual([]);

    resume();
    expect(await writing).toEqual({ size: bytes.length });
    expect((await stat(blobFile(digest))).size).toBe(bytes.length);
    expect(await tempFiles()).toEqual([]);
  });

  it("leaves no temp file behind after a success, a mismatch or a failing source", async () => {
    const bytes = randomBytes(300_000);
    const digest = sha256(bytes);
    await fs.driver.write(digest, chunked(bytes));
    expect(await tempFiles()).toEqual([]);

    await expectDomainError(fs.driver.write(sha256(Buffer.from("x")), chunked(bytes)), "invalid-argument", "digest-mismatch");
    await expectDomainError(fs.driver.write(sha256(bytes.subarray(1)), chunked(bytes), 10), "invalid-argument", "size-mismatch");
    const broken = new Readable({ read() {} });
    broken.push(bytes.subarray(0, 100_000));
    setTimeout(() => broken.destroy(new Error("connection reset")), 20);
    await expect(fs.driver.write(sha256(bytes.subarray(7)), broken)).rejects.toThrow("connection reset");
    await Promise.all(Array.from({ length: 5 }, () => fs.driver.write(digest, chunked(bytes))));

    expect(await tempFiles()).toEqual([]);
    expect((await collect(fs.driver.list())).map((b) => b.digest)).toEqual([digest]);
  });

  it("refuses path traversal in digests and upload ids, and creates nothing outside its root", async () => {
    const outside = join(fs.dataDir, "outside");
    const digests = ["sha256:../../outside", `sha256:${"0".repeat(62)}/..`, "sha256:..%2f..%2foutside", "sha256:/etc/passwd", `sha256:${"a".repeat(64)}\u0000`];
    for (const digest of digests) {
      await expectDomainError(fs.driver.write(digest, Readable.from([Buffer.from("x")])), "invalid-argument", "digest-invalid");
      await expectDomainError(fs.driver.read(digest), "invalid-argument", "digest-invalid");
      await expectDomainError(fs.driver.stat(digest), "invalid-argument", "digest-invalid");
      await expectDomainError(fs.driver.delete(digest), "invalid-argument", "digest-invalid");
      await expectDomainError(fs.driver.commit(randomUUID(), digest), "invalid-argument", "digest-invalid");
    }
    for (const id of ["../outside", "../../outside", "/tmp/outside", `${randomUUID()}/../../outside`]) {
      await expectDomainError(fs.driver.startUpload(id), "invalid-argument");
      await expectDomainError(fs.driver.append(id, 0, Readable.from([Buffer.from("x")])), "invalid-argument");
      await expectDomainError(fs.driver.abort(id), "invalid-argument");
    }
    expect(existsSync(outside)).toBe(false);
    expect(await readdir(fs.dataDir)).toEqual(["blobs"]);
    expect(await collect(fs.driver.listUploads())).toEqual([]);
  });

  it("treats upload ids case-insensitively, as UUIDs are", async () => {
    const id = randomUUID();
    await fs.driver.startUpload(id.toUpperCase());
    expect(await fs.driver.uploadSize(id)).toBe(0);
    expect((await collect(fs.driver.listUploads())).map((u) => u.uploadId)).toEqual([id]);
  });

  it("keeps a killed append's upload at its last good size, and a resumed append continues from there", async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 500);
    const digest = sha256(bytes);
    const first = 1024 * 1024;
    const id = randomUUID();
    await fs.driver.startUpload(id);
    expect(await fs.driver.append(id, 0, chunked(bytes.subarray(0, first)))).toBe(first);

    // The client goes away after sending 1.5 MiB of the rest.
    const killed = new Readable({ read() {} });
    killed.push(bytes.subarray(first, first + 1024 * 1024));
    killed.push(bytes.subarray(first + 1024 * 1024, first + 1536 * 1024));
    setTimeout(() => killed.destroy(new Error("socket hang up")), 50);
    await expect(fs.driver.append(id, first, killed)).rejects.toThrow("socket hang up");
    expect(await fs.driver.uploadSize(id)).toBe(first);
    expect((await stat(join(fs.root, "uploads", id))).size).toBe(first);

    // Resumed in this process (the incremental hash survived the failure)...
    expect(await fs.driver.append(id, first, chunked(bytes.subarray(first, 2 * first)))).toBe(2 * first);
    // ...and finished after a restart.
    const restarted = await fs.restart();
    const killedAgain = new Readable({ read() {} });
    killedAgain.push(bytes.subarray(2 * first, 2 * first + 1000));
    setTimeout(() => killedAgain.destroy(new Error("socket hang up")), 20);
    await expect(restarted.append(id, 2 * first, killedAgain)).rejects.toThrow("socket hang up");
    expect(await restarted.uploadSize(id)).toBe(2 * first);
    expect(await restarted.append(id, 2 * first, chunked(bytes.subarray(2 * first)))).toBe(bytes.length);
    expect(await restarted.commit(id, digest, bytes.length)).toEqual({ size: bytes.length });
    expect((await readAll(await fs.driver.read(digest))).equals(bytes)).toBe(true);
  });

  it("hashes uploads incrementally while their appends happen here, and re-reads them only otherwise", async () => {
    const bytes = randomBytes(2 * 1024 * 1024 + 1);
    const half = 1024 * 1024;
    const upload = async (append: (id: string) => Promise<void>): Promise<string> => {
      const id = randomUUID();
      await fs.driver.startUpload(id);
      await append(id);
      return id;
    };
    const inTwo =
      (driver: FilesystemDriver, second = driver) =>
      async (id: string) => {
        await driver.append(id, 0, chunked(bytes.subarray(0, half)));
        await second.append(id, half, chunked(bytes.subarray(half)));
      };

    // Contiguous appends in this process, even across a failed append: no re-read.
    const one = await upload(async (id) => {
      await fs.driver.append(id, 0, chunked(bytes.subarray(0, half)));
      const killed = new Readable({ read() {} });
      killed.push(bytes.subarray(half, half + 1000));
      setTimeout(() => killed.destroy(new Error("reset")), 20);
      await expect(fs.driver.append(id, half, killed)).rejects.toThrow("reset");
      await fs.driver.append(id, half, chunked(bytes.subarray(half)));
    });
    await fs.driver.commit(one, sha256(bytes));
    expect(fs.driver.rehashedBytes).toBe(0);

    // After a restart the new process re-reads the file.
    const restarted = await fs.restart();
    await restarted.commit(await upload(inTwo(fs.driver)), sha256(bytes));
    expect(restarted.rehashedBytes).toBe(bytes.length);

    // Another process appended in between: this one's hash is stale and is not used.
    await fs.driver.commit(await upload(inTwo(fs.driver, restarted)), sha256(bytes));
    expect(fs.driver.rehashedBytes).toBe(bytes.length);

    // sha512 is always computed at commit.
    await fs.driver.commit(await upload(inTwo(fs.driver)), sha512(bytes));
    expect(fs.driver.rehashedBytes).toBe(2 * bytes.length);
  });

  it("keeps an upload's running hash through a commit that fails after the digest check: the retry commits without re-reading", async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 7);
    const digest = sha256(bytes);
    const id = randomUUID();
    await fs.driver.startUpload(id);
    await fs.driver.append(id, 0, chunked(bytes));
    // A file where the blob's shard directory must go: the digest matches, the rename cannot happen.
    const shard = join(fs.root, "sha256", digest.slice(7, 9));
    await writeFile(shard, "in the way");
    await expect(fs.driver.commit(id, digest)).rejects.toThrow();
    expect(await fs.driver.uploadSize(id)).toBe(bytes.length);
    expect(await fs.driver.stat(digest)).toBeUndefined();
    await rm(shard);
    await fs.driver.commit(id, digest);
    expect(Buffer.concat(await collect(await fs.driver.read(digest))).equals(bytes)).toBe(true);
    expect(fs.driver.rehashedBytes).toBe(0);
  });

  it("keeps serving a blob that is deleted while it is being read", async () => {
    const bytes = randomBytes(3 * 1024 * 1024);
    const digest = sha256(bytes);
    await fs.driver.write(digest, chunked(bytes));
    const stream = await fs.driver.read(digest);
    await fs.driver.delete(digest);
    expect(existsSync(blobFile(digest))).toBe(false);
    expect((await readAll(stream)).equals(bytes)).toBe(true);
  });

  it("sweeps temp files that a crashed process left behind, and only old ones", async () => {
    const old = join(fs.root, "tmp", randomUUID());
    const fresh = join(fs.root, "tmp", randomUUID());
    await writeFile(old, "left by a crash");
    await writeFile(fresh, "a write in flight");
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(old, twoHoursAgo, twoHoursAgo);
    expect(await fs.driver.sweepTemp(60 * 60 * 1000)).toBe(1);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
  });

  it("ignores foreign files in its directories when listing", async () => {
    const bytes = Buffer.from("listed");
    await fs.driver.write(sha256(bytes), Readable.from([bytes]));
    await writeFile(join(fs.root, "sha256", "README"), "not a shard");
    await writeFile(join(fs.root, "sha256", sha256(bytes).slice(7, 9), "not-a-digest"), "x");
    await writeFile(join(fs.root, "uploads", "not-a-uuid"), "x");
    expect((await collect(fs.driver.list())).map((b) => b.digest)).toEqual([sha256(bytes)]);
    expect(await collect(fs.driver.listUploads())).toEqual([]);
  });
});

describe("watchBody (a body that stops sending)", () => {
  const idleError = () => new Error("went silent");

  it("passes every byte through, in order", async () => {
    const parts = [randomBytes(10), randomBytes(70_000), randomBytes(1)];
    const out: Buffer[] = [];
    for await (const chunk of watchBody(Readable.from(parts), { idleMs: 1000, idleError })) out.push(Buffer.from(chunk));
    expect(Buffer.concat(out).equals(Buffer.concat(parts))).toBe(true);
  });

  it("fails with the idle error when no byte comes, and leaves the source as it was (not destroyed)", async () => {
    const source = new PassThrough();
    source.write(Buffer.from("first"));
    const seen: string[] = [];
    const reading = (async () => {
      for await (const chunk of watchBody(source, { idleMs: 50, idleError })) seen.push(Buffer.from(chunk).toString());
    })();
    await expect(reading).rejects.toThrow("went silent");
    expect(seen).toEqual(["first"]);
    expect(source.destroyed).toBe(false);
  });

  it("does not count time the reader takes between reads (a slow disk is not a silent client)", async () => {
    const source = new PassThrough();
    source.end(Buffer.alloc(64 * 1024));
    let chunks = 0;
    for await (const _ of watchBody(source, { idleMs: 20, idleError })) {
      chunks++;
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    expect(chunks).toBeGreaterThan(0);
  });

  it("fails, not ends, when the source closes before its end (a request cut short), and reads strings as bytes", async () => {
    const cut = new PassThrough();
    cut.write(Buffer.from("part"));
    const reading = (async () => {
      for await (const _ of watchBody(cut, { idleMs: 1000, idleError })) cut.destroy();
    })();
    await expect(reading).rejects.toThrow(/premature close/i);

    const text = new PassThrough({ encoding: "utf8" });
    text.end("héllo");
    const out: Buffer[] = [];
    for await (const chunk of watchBody(text, { idleMs: 1000, idleError })) out.push(Buffer.from(chunk));
    expect(Buffer.concat(out).toString()).toBe("héllo");
  });

  it("fails with the signal's reason when it fires", async () => {
    const controller = new AbortController();
    const source = new PassThrough();
    const reading = (async () => {
      for await (const _ of watchBody(source, { signal: controller.signal })) void _;
    })();
    controller.abort(new Error("lease lost"));
    await expect(reading).rejects.toThrow("lease lost");
  });
});

describe.skipIf(!canMountTmpfs("test/content.test.ts (full disk)"))("filesystem driver on a full disk (a small tmpfs)", () => {
  const MiB = 1024 * 1024;
  let dataDir: string;
  let disk: Tmpfs;
  let driver: FilesystemDriver;
  let root: string;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "content-full-"));
    disk = Tmpfs.mount(dataDir, 2 * MiB, 64);
    driver = (await createContentDriver({ dataDir })) as FilesystemDriver;
    root = driver.root;
  });
  afterEach(async () => {
    disk.unmount();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** storage-full, saying so without the machine's paths; the log details name the file. */
  async function expectFull(promise: Promise<unknown>, file: string): Promise<void> {
    const err = await expectDomainError(promise, "resource-exhausted", "storage-full");
    expect(err.message).toMatch(
      /^the content store is full \(no space left on the device holding DATA_DIR\/blobs\): free space or raise the quota, then retry the upload$/,
    );
    expect(err.message).not.toContain(dataDir);
    expect(err.logDetails).toMatchObject({ code: "ENOSPC", path: expect.stringContaining(file) as unknown });
  }

  it("refuses a blob that does not fit, keeps no partial file, and stores it once there is room", async () => {
    const bytes = randomBytes(3 * MiB);
    const free = disk.freeBytes;
    await expectFull(driver.write(sha256(bytes), chunked(bytes)), join(root, "tmp"));
    expect(await readdir(join(root, "tmp"))).toEqual([]);
    expect(await driver.stat(sha256(bytes))).toBeUndefined();
    expect(disk.freeBytes).toBe(free);

    disk.resize(8 * MiB);
    expect(await driver.write(sha256(bytes), chunked(bytes), bytes.length)).toEqual({ size: bytes.length });
    expect((await readAll(await driver.read(sha256(bytes)))).equals(bytes)).toBe(true);
  });

  it("rolls an append that does not fit back to its offset, and the upload continues from there once there is room", async () => {
    const bytes = randomBytes(3 * MiB);
    const first = 512 * 1024;
    const id = randomUUID();
    await driver.startUpload(id);
    expect(await driver.append(id, 0, chunked(bytes.subarray(0, first)))).toBe(first);
    const free = disk.freeBytes;
    await expectFull(driver.append(id, first, chunked(bytes.subarray(first)), undefined, true), join(root, "uploads", id));
    expect(await driver.uploadSize(id)).toBe(first);
    expect(disk.freeBytes).toBe(free);

    disk.resize(8 * MiB);
    expect(await driver.append(id, first, chunked(bytes.subarray(first)))).toBe(bytes.length);
    expect(await driver.commit(id, sha256(bytes), bytes.length)).toEqual({ size: bytes.length });
    expect((await readAll(await driver.read(sha256(bytes)))).equals(bytes)).toBe(true);
  });

  it("with no inode left, refuses a new upload and a commit into a new shard directory, keeping the upload to commit later", async () => {
    const committed = Buffer.from("committed before the disk filled up");
    await driver.write(sha256(committed), Readable.from([committed]));
    const bytes = randomBytes(100_000);
    const id = randomUUID();
    await driver.startUpload(id);
    await driver.append(id, 0, chunked(bytes));
    disk.fillInodes();

    const other = randomUUID();
    await expectFull(driver.startUpload(other), join(root, "uploads", other));
    expect(await driver.uploadSize(other)).toBeUndefined();
    // A new shard directory needs an inode (the committed blob's shard differs, but for 1 in 256).
    const shardTaken = sha256(bytes).slice(7, 9) === sha256(committed).slice(7, 9);
    if (!shardTaken) {
      await expectFull(driver.commit(id, sha256(bytes), bytes.length), sha256(bytes).slice(7, 9));
      expect(await driver.uploadSize(id)).toBe(bytes.length);
    }
    expect((await readAll(await driver.read(sha256(committed)))).equals(committed)).toBe(true);

    disk.free();
    if (!shardTaken) expect(await driver.commit(id, sha256(bytes), bytes.length)).toEqual({ size: bytes.length });
    expect((await readAll(await driver.read(sha256(bytes)))).equals(bytes)).toBe(true);
    await driver.startUpload(other);
    expect(await driver.uploadSize(other)).toBe(0);
  });
});

describe("filesystem driver past the process's file size limit", () => {
  it("answers EFBIG with too-large, not storage-full, and keeps no partial file", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "content-efbig-"));
    try {
      // RLIMIT_FSIZE applies to a whole process, so the driver runs in a child under `ulimit -f`.
      const script = `
        const { randomBytes, createHash } = await import("node:crypto");
        const { readdir } = await import("node:fs/promises");
        const { Readable } = await import("node:stream");
        const { createContentDriver } = await import(${JSON.stringify(join(packageRoot, "src/content/index.ts"))});
        const driver = await createContentDriver({ dataDir: process.env.DATA_DIR });
        const bytes = randomBytes(1024 * 1024);
        const digest = "sha256:" + createHash("sha256").update(bytes).digest("hex");
        const err = await driver.write(digest, Readable.from([bytes])).then(() => undefined, (e) => e);
        const temps = await readdir(driver.root + "/tmp");
        process.stdout.write(JSON.stringify({ kind: err?.kind, reason: err?.reason, message: err?.message, code: err?.logDetails?.code, temps }));
      `;
      const run = spawnSync("bash", ["-c", `ulimit -f 256 && exec "$0" --import tsx --input-type=module -e "$1"`, process.execPath, script], {
        cwd: packageRoot,
        env: { ...process.env, DATA_DIR: dataDir },
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(run.status, run.stderr).toBe(0);
      const result = JSON.parse(run.stdout) as Record<string, unknown>;
      expect(result).toMatchObject({ kind: "resource-exhausted", reason: "too-large", code: "EFBIG", temps: [] });
      expect(result.message).toContain("larger than the largest file that can be written under DATA_DIR/blobs");
      expect(result.message).not.toContain(dataDir);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
