// What a load generator is asked to do and what it reports, whatever tool runs it.

/** connect: Connect JSON over HTTP/1.1; grpc: gRPC (binary) over h2c; rest: plain HTTP/1.1 (REST, /v2/). */
export type Protocol = "connect" | "grpc" | "rest";

export interface PlannedRequest {
  /** e.g. /artifact.v1.TagService/GetTag, or /v1/tags/{id} for REST */
  path: string;
  /** JSON text (connect, rest), base64 protobuf (grpc), "" for none. */
  body: string;
}

export interface LoadPlan {
  protocol: Protocol;
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  /** POST for connect and grpc; any for rest. */
  method: string;
  /** Extra request headers (e.g. Accept for /v2/ manifests, Authorization); a Content-Type here replaces the JSON default. */
  headers?: Record<string, string>;
  /** One picked at random per call. */
  requests: PlannedRequest[];
  /** Calls in flight at once (closed loop: each starts the next when it ends). */
  concurrency: number;
  /** TCP connections (HTTP/2 sessions) the calls share; HTTP/1.1 always uses one per call in flight. */
  connections: number;
  /** A call slower than this is an error (as wrk counts its timeouts). */
  timeoutSeconds: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** wrk threads (default 2: one per core of the machine the bench was written for). */
  threads?: number;
  /** PEM of the CA an https:// baseUrl is verified against (the Node worker only). */
  ca?: string;
}

export interface LoadResult {
  tool: string;
  /** Calls that succeeded inside the measured window. */
  requests: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Failed calls, warm-up included: any makes the run a failure. */
  errors: number;
  /** What the first failure looked like. */
  firstError?: string;
}
