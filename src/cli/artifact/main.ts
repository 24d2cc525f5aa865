#!/usr/bin/env node
// `artifact`: the command line over the typed client. It imports only the client
// (src/client), the generated code (gen/) and Node's built-ins, so it can ship as the bin of the
// client package. Commands are in commands.ts, the dispatcher in app.ts, exit statuses in exit.ts.
import { runCli } from "./app.js";
import { EXIT } from "./exit.js";

/** `artifact tags list … | head -1`: the reader went away; that is not an error. */
function quietOnBrokenPipe(stream: NodeJS.WriteStream): void {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(EXIT.ok);
    throw err;
  });
}

quietOnBrokenPipe(process.stdout);
quietOnBrokenPipe(process.stderr);
// The exit status is set, not forced: output still buffered for a slow pipe gets written first.
process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env });
