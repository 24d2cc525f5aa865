// Exit statuses and the one place errors become them: scripts branch on these numbers, so a
// Connect code maps to exactly one status here and nowhere else.
import { Code, ConnectError } from "@connectrpc/connect";

export const EXIT = {
  ok: 0,
  /** The command line (or the local configuration) is wrong, or the server refused the input as invalid. */
  usage: 1,
  notFound: 2,
  /** No valid credential, or it lacks the role. */
  auth: 3,
  /** Anything else the server or the network answered. */
  failure: 4,
} as const;

export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

/** The exit statuses as `--help` and the README list them. */
export const EXIT_HELP = `Exit status:
  0  done
  1  usage error: unknown command or option, a missing or malformed argument, no service URL,
     an unreadable config or token file, or input the server refused as invalid
  2  not found: a registry, namespace, repository, tag, image or token that does not exist
     (or that the credential may not see)
  3  authentication: no credential, a wrong, expired or revoked one, or a role that does not allow it
  4  any other error from the server or the network (unreachable, already exists, conflict, ...)`;

/** An error the CLI raises itself, with the status it ends the process with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly status: ExitStatus,
  ) {
    super(message);
  }
}

export const usageError = (message: string) => new CliError(message, EXIT.usage);
export const notFoundError = (message: string) => new CliError(message, EXIT.notFound);

const STATUS_OF: Partial<Record<Code, ExitStatus>> = {
  [Code.InvalidArgument]: EXIT.usage,
  [Code.OutOfRange]: EXIT.usage,
  [Code.NotFound]: EXIT.notFound,
  [Code.Unauthenticated]: EXIT.auth,
  [Code.PermissionDenied]: EXIT.auth,
};

const CODE_NAME: Record<Code, string> = {
  [Code.Canceled]: "canceled",
  [Code.Unknown]: "unknown",
  [Code.InvalidArgument]: "invalid argument",
  [Code.DeadlineExceeded]: "deadline exceeded",
  [Code.NotFound]: "not found",
  [Code.AlreadyExists]: "already exists",
  [Code.PermissionDenied]: "permission denied",
  [Code.ResourceExhausted]: "resource exhausted",
  [Code.FailedPrecondition]: "failed precondition",
  [Code.Aborted]: "aborted",
  [Code.OutOfRange]: "out of range",
  [Code.Unimplemented]: "unimplemented",
  [Code.Internal]: "internal",
  [Code.Unavailable]: "unavailable",
  [Code.DataLoss]: "data loss",
  [Code.Unauthenticated]: "unauthenticated",
};

/** What to say on stderr (one line, no stack) and the status to exit with. */
export function describeError(err: unknown, serverUrl: string | undefined): { message: string; status: ExitStatus } {
  if (err instanceof CliError) return { message: oneLine(err.message), status: err.status };
  if (err instanceof ConnectError) {
    const status = STATUS_OF[err.code] ?? EXIT.failure;
    // A system error underneath (ECONNREFUSED, ENOTFOUND…) means the service never answered.
    const syscall = (err.cause as NodeJS.ErrnoException | undefined)?.syscall;
    if (syscall !== undefined) return { message: oneLine(`cannot reach the service at ${serverUrl ?? "its URL"}: ${err.rawMessage}`), status };
    let message = `${CODE_NAME[err.code]}: ${err.rawMessage}`;
    if (err.code === Code.Unauthenticated) message += ` (sign in with: artifact login ${serverUrl ?? "<url>"})`;
    return { message: oneLine(message), status };
  }
  // Anything else is a bug or a local failure (a file we could not write): say what, no stack.
  return { message: oneLine(err instanceof Error ? err.message : String(err)), status: EXIT.failure };
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}
