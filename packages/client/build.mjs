// Builds dist/ of @artifact-service/client (`npm run build` here; `npm pack` runs it as prepack):
// the entry points listed in tsconfig.json "files" and what they import, compiled from the
// repository's src/ and gen/ — the server's own generated code, never a copy of it. Then checks
// that the package holds only that: every compiled file under gen/ or an entry point's folder,
// every runtime import a node: builtin, a relative file or one of "dependencies", and every
// "exports" and "bin" target built.
//
// A CLI (e.g. src/cli/artifact/main.ts, which imports only src/client/ and gen/) joins the
// package with two lines: its main file in tsconfig.json "files", and in package.json
// `"bin": { "artifact": "./dist/src/cli/artifact/main.js" }` (its first line `#!/usr/bin/env node`).
//
// Plain JavaScript, and TypeScript from the repository's node_modules: it builds without the
// workspace being linked.
import { existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, sep } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const dist = join(here, "dist");
const pkg = JSON.parse(readFileSync(join(here, "package.json"), "utf8"));
const posix = (path) => path.split(sep).join("/");

function fail(message) {
  process.stderr.write(`${pkg.name} build: ${message}\n`);
  process.exit(1);
}

rmSync(dist, { recursive: true, force: true });

const config = ts.getParsedCommandLineOfConfigFile(
  join(here, "tsconfig.json"),
  { listEmittedFiles: true },
  { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => fail(ts.flattenDiagnosticMessageText(d.messageText, "\n")) },
);
const program = ts.createProgram({ rootNames: config.fileNames, options: config.options });
const emitted = program.emit();
const diagnostics = [...config.errors, ...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics];
if (diagnostics.length > 0) {
  const host = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => "\n" };
  fail(`TypeScript errors:\n${ts.formatDiagnosticsWithColorAndContext(diagnostics, host)}`);
}

// What the package may hold: the generated code and the entry points' folders. Anything else
// came in through an import (server code, a setting read from the environment) and would
// drag the server's dependencies along.
const allowed = [...new Set(["gen/", ...config.fileNames.map((f) => `${posix(relative(root, dirname(f)))}/`)])];
const files = emitted.emittedFiles.map((f) => posix(relative(dist, f)));
const outside = files.filter((f) => !allowed.some((prefix) => f.startsWith(prefix)));
if (outside.length > 0) fail(`compiled files outside ${allowed.join(", ")} (an entry point imports them):\n  ${outside.join("\n  ")}`);

const dependencies = new Set(Object.keys(pkg.dependencies ?? {}));
const builtins = new Set(builtinModules);
const packageOf = (specifier) => /^(@[^/]+\/)?[^/]+/.exec(specifier)[0];
const undeclared = new Set();
for (const file of files.filter((f) => f.endsWith(".js"))) {
  // TypeScript's own scanner: static imports, re-exports and import() calls, never a string
  // that merely reads like one (`str(args, "from")`).
  const imports = ts.preProcessFile(readFileSync(join(dist, file), "utf8"), true, true).importedFiles;
  for (const { fileName: specifier } of imports) {
    if (specifier.startsWith(".") || specifier.startsWith("node:") || builtins.has(specifier)) continue;
    if (!dependencies.has(packageOf(specifier))) undeclared.add(`${file} imports ${specifier}`);
  }
}
if (undeclared.size > 0) fail(`imports of packages missing from "dependencies":\n  ${[...undeclared].join("\n  ")}`);

/** Every path string in an "exports" tree. */
const targets = (node) => (typeof node === "string" ? [node] : Object.values(node ?? {}).flatMap(targets));
for (const target of [...targets(pkg.exports), ...targets(pkg.bin)]) {
  if (target.includes("*")) {
    // A subpath pattern: its fixed part must be a folder with files in it.
    const folder = join(here, dirname(target.slice(0, target.indexOf("*") + 1)));
    if (!existsSync(folder) || readdirSync(folder).length === 0) fail(`"exports" pattern ${target} matches nothing in dist/`);
  } else if (!existsSync(join(here, target))) {
    fail(`"exports"/"bin" target ${target} was not built; is its source in tsconfig.json "files"?`);
  }
}
for (const target of targets(pkg.bin)) {
  if (!readFileSync(join(here, target), "utf8").startsWith("#!")) fail(`"bin" target ${target} has no #! line`);
}
process.stdout.write(`${pkg.name}: built ${files.length} files in ${posix(relative(root, dist))}/\n`);
