// Lists what src/ exports and no other file imports: dead code, or an `export` that only widens a
// module's surface. `npm run lint:exports`; exits 1 when it finds any.
//
// Built on the TypeScript compiler (no extra dependency): every file of tsconfig.json (src, test,
// bench, examples, scripts) counts as an importer, through named, default, namespace and dynamic
// imports and re-exports. Not reported: the package's public entry points (package.json
// "exports"), and types that an exported function, class or type of the same file names in its
// signature (a caller may need to spell them).
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const PUBLIC_ENTRY_POINTS = new Set(["src/client/browser.ts", "src/client/node.ts"]);

const parsed = ts.getParsedCommandLineOfConfigFile(
  join(root, "tsconfig.json"),
  {},
  {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    },
  },
)!;
const program = ts.createProgram(parsed.fileNames, parsed.options);
const checker = program.getTypeChecker();
const own = program.getSourceFiles().filter((sf) => !sf.isDeclarationFile && !sf.fileName.includes("/node_modules/"));

const resolve = (symbol: ts.Symbol): ts.Symbol => (symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol);

/** Every symbol some file imports (or re-exports) from another. */
const imported = new Set<ts.Symbol>();
/** `file#name` for every name imported through that file (`file#*`: all of them), for re-exports. */
const importedVia = new Set<string>();
const fileOf = (specifier: ts.Expression) => checker.getSymbolAtLocation(specifier)?.declarations?.[0]?.getSourceFile().fileName;
function markModule(specifier: ts.Expression): void {
  const module = checker.getSymbolAtLocation(specifier);
  if (module) for (const s of checker.getExportsOfModule(module)) imported.add(resolve(s));
  importedVia.add(`${fileOf(specifier)}#*`);
}
function markName(specifier: ts.Expression, element: ts.ImportSpecifier | ts.ExportSpecifier): void {
  imported.add(resolve(checker.getSymbolAtLocation(element.name)!));
  importedVia.add(`${fileOf(specifier)}#${(element.propertyName ?? element.name).text}`);
}
for (const sf of own) {
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && node.importClause) {
      const { name, namedBindings } = node.importClause;
      if (name) {
        imported.add(resolve(checker.getSymbolAtLocation(name)!));
        importedVia.add(`${fileOf(node.moduleSpecifier)}#default`);
      }
      if (namedBindings && ts.isNamespaceImport(namedBindings)) markModule(node.moduleSpecifier);
      if (namedBindings && ts.isNamedImports(namedBindings)) {
        for (const element of namedBindings.elements) markName(node.moduleSpecifier, element);
      }
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      if (!node.exportClause) markModule(node.moduleSpecifier);
      else if (ts.isNamedExports(node.exportClause)) {
        for (const element of node.exportClause.elements) markName(node.moduleSpecifier, element);
      }
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0]) {
      markModule(node.arguments[0]);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      markModule(node.argument.literal);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}

/** Type names the exported declarations of `sf` use in their signatures. */
function namedInSignatures(sf: ts.SourceFile, exports: ts.Symbol[]): Set<ts.Symbol> {
  const named = new Set<ts.Symbol>();
  const collect = (node: ts.Node): void => {
    if (ts.isTypeReferenceNode(node) || ts.isExpressionWithTypeArguments(node)) {
      const target = ts.isTypeReferenceNode(node) ? node.typeName : node.expression;
      const symbol = checker.getSymbolAtLocation(target);
      if (symbol) named.add(resolve(symbol));
    }
    if (ts.isBlock(node)) return; // bodies are not signatures
    ts.forEachChild(node, collect);
  };
  for (const symbol of exports) {
    if (imported.has(symbol)) for (const d of symbol.declarations ?? []) if (d.getSourceFile() === sf) collect(d);
  }
  return named;
}

const unused: string[] = [];
for (const sf of own) {
  const file = relative(root, sf.fileName);
  if (!file.startsWith("src/") || PUBLIC_ENTRY_POINTS.has(file)) continue;
  const module = checker.getSymbolAtLocation(sf);
  if (!module) continue;
  const exports = checker.getExportsOfModule(module).map(resolve);
  const signatures = namedInSignatures(sf, exports);
  // `export { x } from "./y.js"`: passed on, but does anyone take it from here?
  for (const statement of sf.statements) {
    if (!ts.isExportDeclaration(statement) || !statement.moduleSpecifier || !statement.exportClause || !ts.isNamedExports(statement.exportClause)) continue;
    for (const element of statement.exportClause.elements) {
      if (importedVia.has(`${sf.fileName}#${element.name.text}`) || importedVia.has(`${sf.fileName}#*`)) continue;
      const line = sf.getLineAndCharacterOfPosition(element.getStart()).line + 1;
      unused.push(`${file}:${line}: ${element.name.text} (re-exported)`);
    }
  }
  for (const symbol of exports) {
    if (imported.has(symbol) || signatures.has(symbol)) continue;
    const declaration = symbol.declarations?.find((d) => d.getSourceFile() === sf);
    if (!declaration) continue;
    const line = sf.getLineAndCharacterOfPosition(declaration.getStart()).line + 1;
    unused.push(`${file}:${line}: ${symbol.name}`);
  }
}

if (unused.length > 0) {
  process.stdout.write(`Exported from src/ but imported nowhere (remove the export, or the code):\n  ${unused.join("\n  ")}\n`);
  process.exitCode = 1;
}
