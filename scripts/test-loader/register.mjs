// node --import ./scripts/test-loader/register.mjs test/x.test.ts (see hooks.mjs).
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '..', '..')).href;
process.setSourceMapsEnabled(true);
register('./hooks.mjs', import.meta.url, { data: { root } });
