// Module hooks for a test process when dist/ is up to date with src/ (CI builds before it tests): the test
// file's own TypeScript compiled by esbuild as it loads, and every import of the project's src/ taken from
// dist/, as the CLI runs it. tsx resolves and compiles every module instead, at about 0.5 s more CPU per
// test process. scripts/run-tests.mjs uses tsx when dist/ is stale. See docs/ci.md.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';

let srcPrefix = '';
let distPrefix = '';

export function initialize(data) {
  srcPrefix = `${data.root}/src/`;
  distPrefix = `${data.root}/dist/`;
}

const TS = /\.(ts|tsx|mts)$/;

export async function resolve(specifier, context, next) {
  const relative = specifier.startsWith('./') || specifier.startsWith('../');
  if (relative && context.parentURL?.startsWith('file:')) {
    const url = new URL(specifier, context.parentURL);
    if (url.href.startsWith(srcPrefix)) {
      // One copy of each project module, the compiled one, whichever way a file names it.
      return { url: distPrefix + url.href.slice(srcPrefix.length).replace(/\.tsx?$/, '.js'), format: 'module', shortCircuit: true };
    }
    // TypeScript's NodeNext convention between test files: './x.js' names ./x.ts (or .tsx).
    if (url.pathname.endsWith('.js') && !existsSync(fileURLToPath(url))) {
      for (const ext of ['.ts', '.tsx']) {
        const candidate = new URL(url.href.replace(/\.js$/, ext));
        if (existsSync(fileURLToPath(candidate))) return { url: candidate.href, format: 'module', shortCircuit: true };
      }
    }
    if (TS.test(url.pathname)) return { url: url.href, format: 'module', shortCircuit: true };
  }
  const resolved = await next(specifier, context);
  // dist/cli/package.json makes the bundled CLI's entry CommonJS (scripts/bundle-cli.mjs); tsc's files beside
  // it, which the tests load, are ES modules all the same.
  if (resolved.format === 'commonjs' && resolved.url.startsWith(distPrefix) && resolved.url.endsWith('.js')) {
    return { ...resolved, format: 'module' };
  }
  return resolved;
}

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !TS.test(new URL(url).pathname)) return next(url, context);
  const path = fileURLToPath(url);
  const { code } = await transform(readFileSync(path, 'utf8'), {
    loader: path.endsWith('.tsx') ? 'tsx' : 'ts',
    format: 'esm',
    target: 'node20',
    jsx: 'automatic',
    sourcemap: 'inline',
    sourcefile: path,
  });
  return { format: 'module', source: code, shortCircuit: true };
}
