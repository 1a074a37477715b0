// Fails when built code that goes into a no-base-image container imports anything the container does not
// have. The simulator image holds only node, dist/sim and dist/openai-server, so every import there must be a
// Node built-in or a file inside one of the folders given. The CPU engine's image adds engines/cpu's
// node_modules, which its code loads by path at run time (src/cpu/runtime.ts), never by a package import.
// Usage: node scripts/ci/check-image-imports.mjs DIST_DIR...   (e.g. dist/sim dist/openai-server)
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, resolve, relative, dirname, isAbsolute } from 'node:path';

const roots = (process.argv.length > 2 ? process.argv.slice(2) : ['dist/sim', 'dist/openai-server']).map((dir) => resolve(dir));
const builtins = new Set(builtinModules);
// Static `import ... from 'x'`, `export ... from 'x'`, bare `import 'x'` and dynamic `import('x')`.
const specifierPattern = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"\n]+)\1/g;
const inside = (root, path) => !relative(root, path).startsWith('..') && !isAbsolute(relative(root, path));

function* jsFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* jsFiles(path);
    else if (/\.(m?js|cjs)$/.test(entry.name)) yield path;
  }
}

const shown = roots.map((root) => relative(process.cwd(), root)).join(', ');
const problems = [];
for (const root of roots) {
  if (!existsSync(root)) {
    problems.push(`${relative(process.cwd(), root)} does not exist: run 'npm run build' first`);
    continue;
  }
  for (const file of jsFiles(root)) {
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(specifierPattern)) {
      const specifier = match[2];
      const where = relative(process.cwd(), file);
      if (specifier.startsWith('node:') || builtins.has(specifier)) continue;
      if (specifier.startsWith('.') || isAbsolute(specifier)) {
        const target = resolve(dirname(file), specifier);
        if (!roots.some((r) => inside(r, target))) problems.push(`${where}: imports ${specifier}, which is outside ${shown}`);
        else if (!existsSync(target)) problems.push(`${where}: imports ${specifier}, which does not exist`);
        continue;
      }
      problems.push(`${where}: imports the package '${specifier}'; the image has no node_modules for it`);
    }
  }
}
if (problems.length > 0) {
  console.error(`The code in ${shown} cannot run in its image:\n  ${problems.join('\n  ')}`);
  console.error('It may import only Node built-ins and files in those folders (src/sim and src/openai-server: Node built-ins only).');
  process.exit(1);
}
