// The shape of src/ as rules (issue 14's "Done when", DESIGN.md "Layers"): no import cycles, imports point
// down the layers, no source file over 400 lines without a reason, and the raw database handle stays inside
// src/store/. Imports are read with the TypeScript compiler, type-only ones included (a type import still
// ties two modules together). What is wrong today and being fixed is listed in KNOWN, with who fixes it:
// the test fails on anything new, and also when a listed violation is gone, so the list only shrinks.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The layers of src/, lowest first (DESIGN.md "Layers", README "Layout"). A module may import its own layer
 * or a lower one, never a higher one. Every folder under src/ must be listed here.
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['core', 'openai-server'], // errors, config, paths, logging, shared types; the OpenAI wire the engines' servers share
  ['store', 'gpu', 'models', 'compliance', 'metrics', 'sim', 'cpu'], // state, hardware, catalogs, the engines' own servers
  ['daemon', 'engine', 'doctor', 'bundle', 'dashboard', 'capacity'], // the services that compose the ones below
  ['cli', 'bench'], // the programs: commands, rendering, benchmarks
];

const MAX_LINES = 400;

/** Source files allowed over MAX_LINES, each with its reason. */
const LONG_FILES: Record<string, string> = {};

/**
 * Violations on main today, each with who is fixing it (ROSTER.md, wave 1). When yours is fixed this test
 * fails until you delete its line here.
 */
const KNOWN: readonly { violation: string; owner: string }[] = [];

// ---------------------------------------------------------------------------------------------------------

type Edge = { from: string; to: string; typeOnly: boolean };

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (/\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

const rel = (file: string) => relative(ROOT, file).split('\\').join('/');
const FILES = sourceFiles(join(ROOT, 'src')).sort();

/** A relative specifier ('./x.js', '../y/index.js') resolved to its source file, or null when outside src/. */
function resolveImport(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const base = resolve(dirname(from), specifier);
  const stem = base.replace(/\.(m|c)?jsx?$/, '');
  for (const candidate of [`${stem}.ts`, `${stem}.tsx`, join(base, 'index.ts')]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${rel(from)} imports ${specifier}, which resolves to no source file`);
}

function importsOf(file: string, source: ts.SourceFile): Edge[] {
  const edges: Edge[] = [];
  const add = (specifier: ts.Expression | undefined, typeOnly: boolean) => {
    if (!specifier || !ts.isStringLiteralLike(specifier)) return;
    const to = resolveImport(file, specifier.text);
    if (to) edges.push({ from: rel(file), to: rel(to), typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const allTypes =
        !!clause &&
        (clause.isTypeOnly ||
          (!clause.name &&
            !!clause.namedBindings &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier, allTypes);
    } else if (ts.isExportDeclaration(node)) {
      add(node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal as ts.Expression, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return edges;
}

const program = ts.createProgram(FILES, {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  jsx: ts.JsxEmit.ReactJSX,
  strict: true,
  esModuleInterop: true,
  resolveJsonModule: true,
  skipLibCheck: true,
  noEmit: true,
  types: ['node'],
});
const EDGES = FILES.flatMap((file) => importsOf(file, program.getSourceFile(file)!));

const folderOf = (file: string) => file.split('/')[1]!; // src/<folder>/...
const layerOf = (folder: string) => LAYERS.findIndex((layer) => layer.includes(folder));

/** Strongly connected components of more than one file (or a file importing itself), by Tarjan's algorithm. */
function cycles(edges: Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (next.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const file of FILES.map(rel)) if (!index.has(file)) connect(file);
  return found.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** Every place outside src/store/ where a value of better-sqlite3's Database type is touched, per file. */
function rawHandleUses(): Map<string, number[]> {
  const checker = program.getTypeChecker();
  const uses = new Map<string, number[]>();
  // The handle's type is better-sqlite3's Database interface, whatever the variable or alias is called.
  const isHandle = (node: ts.Node) => {
    const symbol = checker.getTypeAtLocation(node).getSymbol();
    return (
      symbol?.getName() === 'Database' &&
      symbol.getDeclarations()?.some((d) => /[\\/]@types[\\/]better-sqlite3[\\/]/.test(d.getSourceFile().fileName)) === true
    );
  };
  for (const file of FILES) {
    if (rel(file).startsWith('src/store/')) continue;
    const source = program.getSourceFile(file)!;
    const note = (node: ts.Node) => {
      const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
      const lines = uses.get(rel(file)) ?? [];
      if (!lines.includes(line)) uses.set(rel(file), [...lines, line]);
    };
    const visit = (node: ts.Node): void => {
      if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier) && node.moduleSpecifier.text === 'better-sqlite3')
        note(node);
      else if ((ts.isPropertyAccessExpression(node) || ts.isBindingElement(node)) && isHandle(node.name)) note(node);
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return uses;
}

function current(): Map<string, string> {
  const found = new Map<string, string>(); // violation -> detail

  for (const component of cycles(EDGES)) {
    found.set(`import cycle: ${component.join(' ')}`, `${component.length} files import each other in a loop`);
  }

  for (const e of EDGES) {
    const [from, to] = [folderOf(e.from), folderOf(e.to)];
    if (layerOf(from) < layerOf(to)) {
      found.set(`upward import: ${e.from} -> ${e.to}`, `src/${from}/ (layer ${layerOf(from)}) imports src/${to}/ (layer ${layerOf(to)})`);
    }
  }

  for (const file of FILES) {
    const lines = readFileSync(file, 'utf8').split('\n').length - 1;
    if (lines > MAX_LINES && !(rel(file) in LONG_FILES)) found.set(`over ${MAX_LINES} lines: ${rel(file)}`, `${lines} lines`);
  }

  for (const [file, lines] of rawHandleUses()) {
    found.set(`raw database handle outside src/store/: ${file}`, `lines ${lines.join(', ')}`);
  }
  return found;
}

const FOUND = current();

test('every folder under src/ has a layer', () => {
  const folders = [...new Set(FILES.map((f) => folderOf(rel(f))))].sort();
  const missing = folders.filter((f) => layerOf(f) < 0);
  assert.deepEqual(missing, [], `add these folders to LAYERS in test/architecture.test.ts: ${missing.join(', ')}`);
});

test('the checker sees the imports (one that found none would pass every rule)', () => {
  assert.ok(EDGES.length > FILES.length, `${EDGES.length} imports among ${FILES.length} files`);
});

test('no new import cycle, upward import, long file or raw database handle outside src/store/', () => {
  const known = new Set(KNOWN.map((k) => k.violation));
  const added = [...FOUND].filter(([v]) => !known.has(v)).map(([v, detail]) => `  ${v}  (${detail})`);
  assert.equal(
    added.length,
    0,
    `new architecture violations (rules at the top of test/architecture.test.ts):\n${added.join('\n')}\n` +
      'Fix them; a file over the limit that has to stay long goes in LONG_FILES with its reason.',
  );
});

test('every listed known violation still exists (delete the line of one you fixed)', () => {
  const gone = KNOWN.filter((k) => !FOUND.has(k.violation)).map((k) => `  ${k.violation}  (owner: ${k.owner})`);
  assert.equal(gone.length, 0, `fixed, so delete these lines from KNOWN in test/architecture.test.ts:\n${gone.join('\n')}`);
});

test('every long file allowed with a reason is still over the limit', () => {
  const short = Object.keys(LONG_FILES).filter((file) => readFileSync(join(ROOT, file), 'utf8').split('\n').length - 1 <= MAX_LINES);
  assert.deepEqual(short, [], 'these files are no longer over the limit: delete them from LONG_FILES in test/architecture.test.ts');
});
