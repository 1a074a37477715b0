import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const builtins = new Set(builtinModules);
// import/export ... from 'x', bare import 'x', import('x'); type-only imports count too.
const specifierPattern = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"\n]+)\1/g;

/** Every import of the .ts files in src/<folder>: [file, specifier, the src/ folder it lands in (or the package)]. */
function importsOf(folder: string): Array<{ file: string; specifier: string; target: string }> {
  const out: Array<{ file: string; specifier: string; target: string }> = [];
  const dir = join(SRC, folder);
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
    const file = join(dir, name);
    for (const match of readFileSync(file, 'utf8').matchAll(specifierPattern)) {
      const specifier = match[2]!;
      const target = specifier.startsWith('.')
        ? relative(SRC, resolve(dirname(file), specifier)).split('/')[0]!
        : specifier.startsWith('node:') || builtins.has(specifier)
          ? 'node'
          : `package ${specifier}`;
      out.push({ file: `src/${folder}/${name}`, specifier, target });
    }
  }
  return out;
}

const outside = (folder: string, allowed: string[]) =>
  importsOf(folder)
    .filter((i) => !allowed.includes(i.target))
    .map((i) => `${i.file} imports ${i.specifier}`);

test('the OpenAI wire the engines share imports only Node built-ins and itself (it goes into the no-node_modules sim image)', () => {
  assert.deepEqual(outside('openai-server', ['node', 'openai-server']), []);
});

test('the simulator imports only Node built-ins, itself and the shared wire', () => {
  assert.deepEqual(outside('sim', ['node', 'sim', 'openai-server']), []);
});

test('the CPU engine borrows nothing from the simulator: what they share lives in src/openai-server', () => {
  assert.deepEqual(
    importsOf('cpu')
      .filter((i) => i.target === 'sim')
      .map((i) => `${i.file} imports ${i.specifier}`),
    [],
  );
});
