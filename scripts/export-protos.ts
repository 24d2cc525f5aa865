// `npm run protos:export [-- <dir>]` (default dist/proto): the service's protos and every file they
// import, as one self-contained folder for other languages' toolchains: `protoc -I <dir>` (or
// grpc_tools, or buf) needs nothing else. Offline, like `npm run generate`: no Buf Schema Registry.
//
// `buf export` writes proto/ and the google/api files of the npm modules buf.yaml lists. It leaves
// out the well-known types (buf has them built in, protoc does not), so google/protobuf/* are
// copied from the google-proto-files package; then every import must resolve inside the folder.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { packageRoot } from "../src/paths.js";

const HEADER = "# Artifact Service protos (exported)";
// npm runs scripts in the package root; a relative <dir> means one under the caller's directory.
const out = process.argv[2] ? resolve(process.env.INIT_CWD ?? process.cwd(), process.argv[2]) : join(packageRoot, "dist", "proto");

function fail(message: string): never {
  process.stderr.write(`protos:export: ${message}\n`);
  process.exit(1);
}

// Replace an earlier export, never anything else a mistyped path might name.
if (existsSync(out) && readdirSync(out).length > 0) {
  const readme = join(out, "README.md");
  if (!existsSync(readme) || !readFileSync(readme, "utf8").startsWith(HEADER)) {
    fail(`${out} is not empty and is not an earlier export (its README.md would start with "${HEADER}"); choose an empty or new folder`);
  }
  rmSync(out, { recursive: true });
}

execFileSync(join(packageRoot, "node_modules", ".bin", "buf"), ["export", ".", "--path", "proto/artifact", "--output", out], {
  cwd: packageRoot,
  stdio: "inherit",
});

const protos = (): string[] =>
  readdirSync(out, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".proto"))
    .map((f) => f.split("\\").join("/"))
    .sort();
const importsOf = (file: string): string[] =>
  [...readFileSync(join(out, file), "utf8").matchAll(/^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm)].map((m) => m[1]!);

const wellKnown = join(packageRoot, "node_modules", "google-proto-files");
for (let added = true; added;) {
  added = false;
  for (const file of protos()) {
    for (const imported of importsOf(file)) {
      if (existsSync(join(out, imported))) continue;
      if (!imported.startsWith("google/protobuf/") || !existsSync(join(wellKnown, imported))) fail(`${file} imports ${imported}, found nowhere`);
      mkdirSync(dirname(join(out, imported)), { recursive: true });
      copyFileSync(join(wellKnown, imported), join(out, imported));
      added = true;
    }
  }
}

writeFileSync(
  join(out, "README.md"),
  `${HEADER}

Written by \`npm run protos:export\` in the Artifact Service repository; do not edit. The
\`artifact.v1\` services (artifact/v1/) and every file they import (google/api/ from googleapis,
google/protobuf/ from protobuf), so this folder is the only include path a code generator needs:

    protoc -I . --python_out=OUT --grpc_python_out=OUT \\
      --plugin=protoc-gen-grpc_python=$(command -v grpc_python_plugin) \\
      artifact/v1/*.proto google/api/*.proto

Generate google/api/ too unless the target language has it (Python: googleapis-common-protos);
google/protobuf/ ships with every protobuf runtime. Calls take an API token as the metadata
\`authorization: Bearer <token>\`. Each file keeps its own licence header.
`,
);
const shown = relative(process.cwd(), out);
process.stdout.write(`protos:export: ${protos().length} files in ${shown.startsWith("..") ? out : shown || "."}\n`);
