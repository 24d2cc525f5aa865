// The Connect interceptors, all in src/api/interceptors/. Every call, whichever way it came in
// (gRPC, gRPC-Web, Connect, or REST through src/http/rest/invoke.ts), passes them in the order
// src/http/app.ts lists them, outermost first: call.ts (request id, the log line, metrics, domain
// errors → Connect codes), deadline.ts, database-gate.ts, text.ts; then the service in src/api/.
// They sit between the edge (src/http/, which mounts them) and the services, and import only
// src/api/errors.ts, src/domain/, src/request-id.ts and src/client-certificate.ts: nothing below
// src/api/ knows of them.
//
// What every call goes through, in one place: a request id, one log line with procedure,
// code and duration, and the translation of domain errors to Connect codes. Identity and
// permissions will be one more interceptor of this chain.
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { toConnectError } from "../errors.js";
import { pickRequestId, REQUEST_ID_HEADER } from "../../request-id.js";
import { clientCertificateKey } from "../../client-certificate.js";

export const requestIdKey = createContextKey<string>("");

/** Hooks for metrics. */
export interface CallObserver {
  /** Called when a call starts. */
  started(procedure: string): void;
  /** Called once per call when it ends, with its Connect code in snake case ("ok" on success). */
  ended(procedure: string, code: string, seconds: number): void;
}

export function callInterceptor(log: Logger, observe?: CallObserver): Interceptor {
  return (next) => async (req) => {
    const requestId = pickRequestId(req.header.get(REQUEST_ID_HEADER));
    req.contextValues.set(requestIdKey, requestId);
    const procedure = `/${req.service.typeName}/${req.method.name}`;
    // Mutual TLS: who called, in the call's line (absent without a verified client certificate).
    const clientSubject = req.contextValues.get(clientCertificateKey)?.subject;
    const started = performance.now();
    observe?.started(procedure);
    const finish = (err?: unknown): ConnectError | undefined => {
      const seconds = (performance.now() - started) / 1000;
      let error: ConnectError | undefined;
      let why: { error?: string } = {};
      if (err !== undefined) {
        const mapped = toConnectError(err, requestId);
        error = mapped.error;
        // A refused call says why, as the client was told (an unexpected error gets its own line).
        if (!mapped.unexpected) why = { error: error.rawMessage.slice(0, 500) };
        error.metadata.set(REQUEST_ID_HEADER, requestId);
        if (mapped.unexpected) log.error({ requestId, procedure, err }, "unexpected error");
        else if (mapped.logDetails) log.warn({ requestId, procedure, ...mapped.logDetails }, error.rawMessage);
      }
      const code = error ? Code[error.code] : "OK";
      const codeName = code.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
      // Probes and reflection run all day long; their successes are not worth a line at info.
      const quiet = codeName === "ok" && (procedure.startsWith("/grpc.health.") || procedure.startsWith("/grpc.reflection."));
      log[quiet ? "debug" : "info"]({ requestId, procedure, code: codeName, ...why, ms: Math.round(seconds * 10_000) / 10, clientSubject }, "call");
      observe?.ended(procedure, codeName, seconds);
      return error;
    };
    try {
      const res = await next(req);
      res.header.set(REQUEST_ID_HEADER, requestId);
      if (!res.stream) {
        finish();
        return res;
      }
      return { ...res, message: observeStream(res.message, finish) };
    } catch (err) {
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- a ConnectError unless err itself was undefined
      throw finish(err);
    }
  };
}

async function* observeStream<T>(messages: AsyncIterable<T>, finish: (err?: unknown) => ConnectError | undefined) {
  let ended = false;
  try {
    yield* messages;
    ended = true;
    finish();
  } catch (err) {
    ended = true;
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- a ConnectError unless err itself was undefined
    throw finish(err);
  } finally {
    // The client went away before the end: the generator is closed without an error.
    if (!ended) finish(new ConnectError("the client closed the stream", Code.Canceled));
  }
}
