import { createHash, randomBytes, randomUUID } from "node:crypto";
import { S3Driver } from "./src/content/s3.js";
const MiB = 1 << 20;
const size = Number(process.env.SIZE_MB ?? 512);
const part = Number(process.env.PART_MB ?? 16);
const conc = Number(process.env.CONC ?? 4);
const d = new S3Driver({ endpoint: process.env.S3_TEST_ENDPOINT, region: "us-east-1", bucket: process.env.S3_TEST_BUCKET!, prefix: `speed-${randomUUID()}/`, forcePathStyle: true, credentials: { accessKeyId: "test:tester", secretAccessKey: "testing" } }, { partSize: part * MiB, partConcurrency: conc });
const chunk = randomBytes(MiB);
const h = createHash("sha256"); for (let i = 0; i < size; i++) h.update(chunk);
const digest = `sha256:${h.digest("hex")}`;
async function* body() { for (let i = 0; i < size; i++) yield Buffer.from(chunk); }
let t = performance.now();
await d.write(digest, body(), size * MiB);
const w = (performance.now() - t) / 1000;
t = performance.now();
let n = 0; for await (const c of await d.read(digest)) n += (c as Buffer).length;
const r = (performance.now() - t) / 1000;
console.log(`write ${size} MiB part ${part} conc ${conc}: ${w.toFixed(2)} s (${(size / w).toFixed(0)} MiB/s); read ${r.toFixed(2)} s (${(size / r).toFixed(0)} MiB/s)`);
d.client.destroy();
