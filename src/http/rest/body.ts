// Part of the REST transcoder (its layout and layering: src/http/rest/transcoder.ts).
//
// Reading a REST request body: JSON only, UTF-8, uncompressed, at most `limit` bytes.
import type http from "node:http";
import type http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { invalidRequest, RestError } from "./error.js";

type Request = http.IncomingMessage | http2.Http2ServerRequest;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** `application/json` or `application/<anything>+json`; a charset, if given, must be UTF-8. */
function isJsonContentType(value: string): boolean {
  const [type = "", ...params] = value.split(";");
  const t = type.trim().toLowerCase();
  if (t !== "application/json" && !(t.startsWith("application/") && t.endsWith("+json"))) return false;
  return params.every((p) => {
    const [k = "", v = ""] = p.split("=");
    return k.trim().toLowerCase() !== "charset" || /^"?utf-8"?$/i.test(v.trim());
  });
}

function notJson(contentType: string | undefined): RestError {
  const got = contentType === undefined ? "no Content-Type" : `Content-Type ${JSON.stringify(contentType.slice(0, 100))}`;
  return new RestError(415, Code.InvalidArgument, `the request body must be JSON (Content-Type: application/json); got ${got}`);
}

/**
 * A body over the limit, refused before the rest of it is read (it may be any size): on HTTP/1.1
 * the connection is not reused (src/http/listener.ts drops the rest for a bounded time).
 */
function tooLarge(req: Request, limit: number): RestError {
  const headers: Record<string, string> = req.httpVersionMajor === 1 ? { connection: "close" } : {};
  return new RestError(413, Code.ResourceExhausted, `the request body is larger than the limit of ${limit} bytes`, headers);
}

/** The body as text, "" when there is none. */
export async function readJsonBody(req: Request, limit: number): Promise<string> {
  const contentType = req.headers["content-type"];
  const declared = req.headers["content-length"];
  if (declared === "0") return "";
  if (contentType !== undefined && !isJsonContentType(contentType)) throw notJson(contentType);
  const encoding = req.headers["content-encoding"];
  if (encoding !== undefined && encoding.toLowerCase() !== "identity") {
    throw new RestError(415, Code.InvalidArgument, `Content-Encoding ${JSON.stringify(encoding.slice(0, 50))} is not supported; send the body uncompressed`);
  }
  if (declared !== undefined && Number(declared) > limit) {
    // Not worth reading: the client learns it now.
    throw tooLarge(req, limit);
  }
  const bytes = await collect(req, limit);
  if (bytes.length === 0) return "";
  if (contentType === undefined) throw notJson(contentType);
  try {
    return utf8.decode(bytes);
  } catch {
    throw invalidRequest("the request body is not valid UTF-8");
  }
}

function collect(req: Request, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onGone);
      req.off("close", onGone);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        // The answer need not wait for the rest.
        reject(tooLarge(req, limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    // The client went away mid-body: nobody is left to answer, and it is not our failure.
    const onGone = () => {
      cleanup();
      reject(new ConnectError("the client closed the request before sending its body", Code.Canceled));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onGone);
    req.on("close", onGone);
  });
}
