// `cs-llm --help` starts fast because building the program loads only the commands' registrations (#21): a
// command loads the daemon, Docker's client, Ink, the store and the other heavy modules inside its action.
// Checked on the static imports of src/cli/main.ts, of src/cli/run.ts (which main.ts imports unless the
// build's help answers) and of everything they import without `await import()`, so the test needs no build
// and asserts no timing.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Packages a command loads when it runs; `--help`, `--version` and the registrations never need them. They
 * also stand for the modules that use them: the store (better-sqlite3), the engine (dockerode), the
 * dashboard (ink), the daemon (undici, prom-client), the GPUs (systeminformation), the config (zod).
 */
const HEAVY_PACKAGES = [
  'better-sqlite3',
  'dockerode',
  'execa',
  'ink',
  'openai',
  'pg',
  'prom-client',
  'react',
  'systeminformation',
  'undici',
  'zod',
  // node's own modules that are not loaded by node's start (nor by commander, which loads node:child_process):
  // compiling them costs every command's start (#21).
  'node:crypto',
  'node:readline',
];

/** The value imports (and re-exports) and require() calls of a file; `import type` and `import()` load nothing at start. */
function staticImports(source: string): string[] {
  const out: string[] = [];
  const pattern = /^(?:import|export)\s+(type\s+)?(?:([^;]*?)\s+from\s+)?'([^']+)'/gms;
  for (const m of source.matchAll(pattern)) {
    if (m[1]) continue;
    const names = m[2]?.match(/^\{([^}]*)\}$/s)?.[1];
    // `import { type A, type B } from` is erased by the compiler like `import type`.
    if (names !== undefined && names.split(',').every((n) => n.trim() === '' || /^type\s/.test(n.trim()))) continue;
    out.push(m[3]!);
  }
  // A package loaded through createRequire (undici's and prom-client's own files, #21) counts as well.
  for (const m of source.matchAll(/\brequire\('([^']+)'\)/g)) out.push(m[1]!);
  return out;
}

function closure(entry: string): { files: Set<string>; packages: Map<string, string> } {
  const files = new Set<string>();
  const packages = new Map<string, string>(); // package -> the first file that imports it
  const visit = (file: string) => {
    const name = relative(ROOT, file).split('\\').join('/');
    if (files.has(name)) return;
    files.add(name);
    for (const specifier of staticImports(readFileSync(file, 'utf8'))) {
      if (specifier.startsWith('node:')) {
        if (!packages.has(specifier)) packages.set(specifier, name);
        continue;
      }
      if (!specifier.startsWith('.')) {
        const pkg = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
        if (!packages.has(pkg)) packages.set(pkg, name);
        continue;
      }
      const stem = resolve(dirname(file), specifier).replace(/\.js$/, '');
      const target = [`${stem}.ts`, `${stem}.tsx`].find((candidate) => existsSync(candidate));
      assert.ok(target, `${name} imports ${specifier}, which resolves to no source file`);
      visit(target);
    }
  };
  visit(entry);
  return { files, packages };
}

test('building the CLI program loads no heavy package or service module (each command loads its own when it runs)', () => {
  // The program imports a command's module when the command line names it (src/cli/command-table.ts): its
  // registration is on the start of `cs-llm <command> --help`, so each one's static imports count too.
  const entry = closure(join(ROOT, 'src', 'cli', 'main.ts'));
  const { files, packages } = closure(join(ROOT, 'src', 'cli', 'run.ts'));
  for (const [pkg, file] of entry.packages) if (!packages.has(pkg)) packages.set(pkg, file);
  assert.ok(files.has('src/cli/program.ts') && files.has('src/cli/command-table.ts'), 'the closure reaches the table');
  const heavy = HEAVY_PACKAGES.filter((p) => packages.has(p)).map((p) => `${p} (imported by ${packages.get(p)})`);
  const table = readFileSync(join(ROOT, 'src', 'cli', 'command-table.ts'), 'utf8');
  const commands = [...table.matchAll(/import\('\.\/(commands\/[\w-]+)\.js'\)/g)].map((m) => m[1]!);
  assert.ok(commands.length > 10 && commands.includes('commands/status'), `the table loads ${commands.join(', ')}`);
  for (const command of commands) {
    const reached = closure(join(ROOT, 'src', 'cli', `${command}.ts`)).packages;
    heavy.push(...HEAVY_PACKAGES.filter((p) => reached.has(p)).map((p) => `${p} (imported by ${reached.get(p)})`));
  }
  assert.deepEqual([...new Set(heavy)], [], 'move these imports into the command actions (await import())');
});

test('a daemon and its config load no zod: the hand-written checks accept what is valid, zod names what is not', () => {
  for (const entry of ['src/daemon/main.ts', 'src/daemon/server.ts', 'src/core/config.ts']) {
    const { packages } = closure(join(ROOT, entry));
    assert.equal(
      packages.get('zod'),
      undefined,
      `${entry} reaches zod (through ${packages.get('zod')}): load it with src/core/zod-sync.ts`,
    );
  }
});

test('the built CLI starts from CommonJS and holds each error class once (after npm run build)', async (t) => {
  // node starts a CommonJS entry without its ES module loader (scripts/bundle-cli.mjs); the commands' ES
  // chunks take the error classes from the same module as the entry, which recognises them with instanceof.
  const cli = join(ROOT, 'dist', 'cli');
  if (!existsSync(join(cli, 'main.js'))) return t.skip('no build in dist/ (npm run build)');
  assert.equal(JSON.parse(readFileSync(join(cli, 'package.json'), 'utf8')).type, 'commonjs');
  assert.doesNotMatch(readFileSync(join(cli, 'main.js'), 'utf8'), /^import /m, 'main.js has no ES import');
  const definers = readdirSync(cli).filter(
    (name) => /\.(c|m)?js$/.test(name) && /\bCsLlmError = class\b/.test(readFileSync(join(cli, name), 'utf8')),
  );
  assert.deepEqual(definers, ['shared.cjs']);
  const fromCjs = createRequire(import.meta.url)(join(cli, 'shared.cjs')) as { CsLlmError: unknown };
  const fromEsm = (await import(pathToFileURL(join(cli, 'shared.mjs')).href)) as { CsLlmError: unknown };
  assert.equal(fromEsm.CsLlmError, fromCjs.CsLlmError);
});
