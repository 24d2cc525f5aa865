// Part of the REST transcoder (its layout and layering: src/http/rest/transcoder.ts).
//
// Errors of the REST edge: a ConnectError from a service keeps the HTTP status the Connect
// protocol gives its code; problems found before any call (no route, wrong method, body not
// JSON or too large) carry their own HTTP status. Either way the body is Connect's error JSON,
// {"code": "not_found", "message": "..."}, so one client-side parser reads both.
import type { JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString, errorToJson } from "@connectrpc/connect/protocol-connect";

// Not a ConnectError subclass: ConnectError's instanceof accepts any ConnectError-shaped value,
// which would make every ConnectError look like a RestError.
export class RestError extends Error {
  constructor(
    readonly status: number,
    readonly code: Code,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "RestError";
  }
}

export type EdgeError = RestError | ConnectError;

export const invalidRequest = (message: string) => new RestError(400, Code.InvalidArgument, message);

export function errorStatus(err: EdgeError): number {
  return err instanceof RestError ? err.status : codeToHttpStatus(err.code);
}

export function errorObject(err: EdgeError): JsonObject {
  if (err instanceof RestError) return { code: codeToString(err.code), message: err.message };
  return errorToJson(err, undefined);
}
