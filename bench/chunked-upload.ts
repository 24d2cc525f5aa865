// A chunked /v2/ blob upload whose requests go where the caller says: the POST that opens the
// session, PATCHes of consecutive ranges of a file (Content-Range), each to the next base URL in
// turn (replicas' own ports, not a balancer), and the closing PUT ?digest=. Every request is timed
// and its answer checked (status; the Range each PATCH reports; the digest the PUT answers).
import { createReadStream } from "node:fs";
import { request } from "node:http";

export interface ChunkedUpload {
  /** Where the POST goes and the PUT ends it. */
  openOn: string;
  closeOn: string;
  /** Where the PATCHes go, in turn: one base URL for all of them, or several replicas. */
  patchOn: string[];
  repository: string;
  file: string;
  size: number;
  digest: string;
  chunks: number;
}

export interface ChunkedTimes {
  post: number;
  /** Seconds of each PATCH. */
  patches: number[];
  put: number;
  total: number;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(url: string, method: string, headers: Record<string, string | number>, body?: { file: string; start: number; end: number }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c.length < 2000 ? c : c.slice(0, 2000)));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on("error", reject);
    });
    req.on("error", reject);
    if (!body) return req.end();
    const stream = createReadStream(body.file, { start: body.start, end: body.end, highWaterMark: 1 << 20 });
    stream.on("error", (err) => req.destroy(err));
    stream.pipe(req);
  });
}

const header = (a: Answer, name: string) => {
  const v = a.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** The path and query of an upload's Location (absolute or not), to send to any replica. */
function sessionPath(a: Answer, what: string): string {
  const location = header(a, "location");
  if (!location) throw new Error(`${what}: HTTP ${a.status} without a Location: ${a.body.slice(0, 200)}`);
  const url = new URL(location, "http://placeholder");
  return `${url.pathname}${url.search}`;
}

export async function timeChunkedUpload(o: ChunkedUpload): Promise<ChunkedTimes> {
  const t0 = performance.now();
  const opened = await send(`${o.openOn}/v2/${o.repository}/blobs/uploads/`, "POST", { "content-length": 0 });
  if (opened.status !== 202) throw new Error(`POST: HTTP ${opened.status}: ${opened.body.slice(0, 200)}`);
  let path = sessionPath(opened, "POST");
  const post = (performance.now() - t0) / 1000;
  const patches: number[] = [];
  const chunk = Math.ceil(o.size / o.chunks);
  for (let n = 0, start = 0; start < o.size; n++, start += chunk) {
    const end = Math.min(o.size, start + chunk) - 1;
    const base = o.patchOn[n % o.patchOn.length]!;
    const p0 = performance.now();
    const patched = await send(
      `${base}${path}`,
      "PATCH",
      { "content-type": "application/octet-stream", "content-range": `${start}-${end}`, "content-length": end - start + 1 },
      { file: o.file, start, end },
    );
    patches.push((performance.now() - p0) / 1000);
    if (patched.status !== 202) throw new Error(`PATCH ${n + 1} (${start}-${end}) to ${base}: HTTP ${patched.status}: ${patched.body.slice(0, 200)}`);
    if (header(patched, "range") !== `0-${end}`) throw new Error(`PATCH ${n + 1}: Range ${header(patched, "range")}, expected 0-${end}`);
    path = sessionPath(patched, `PATCH ${n + 1}`);
  }
  const q0 = performance.now();
  const closed = await send(`${o.closeOn}${path}${path.includes("?") ? "&" : "?"}digest=${encodeURIComponent(o.digest)}`, "PUT", { "content-length": 0 });
  const put = (performance.now() - q0) / 1000;
  if (closed.status !== 201) throw new Error(`PUT ?digest=: HTTP ${closed.status}: ${closed.body.slice(0, 200)}`);
  if (header(closed, "docker-content-digest") !== o.digest)
    throw new Error(`PUT: Docker-Content-Digest ${header(closed, "docker-content-digest")}, expected ${o.digest}`);
  return { post, patches, put, total: (performance.now() - t0) / 1000 };
}
