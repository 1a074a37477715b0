import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// node:fs through require, not `import`: for an ES import node builds the module's ES facade, which reads
// every export, ReadStream's lazy getter included, and that loads fs's stream modules: about 5 ms of
// `cs-llm --help` and `--version`, whose path imports node:fs only here (#21).
const { readFileSync } = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');

/** The package root: src/core or dist/core are two levels down. */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const VERSION: string = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
