// Fails when the built simulator imports anything the no-base-image container does not have: it holds
// only node and dist/sim, so every import must be a Node built-in or a file inside dist/sim.
// Usage: node scripts/ci/check-sim-imports.mjs DIST_SIM_DIR
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, resolve, relative, dirname, isAbsolute } from 'node:path';

const root = resolve(process.argv[2] ?? 'dist/sim');
const builtins = new Set(builtinModules);
// Static `import ... from 'x'`, `export ... from 'x'`, bare `import 'x'` and dynamic `import('x')`.
const specifierPattern = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"\n]+)\1/g;

function* jsFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* jsFiles(path);
    else if (/\.(m?js|cjs)$/.test(entry.name)) yield path;
  }
}

const problems = [];
for (const file of jsFiles(root)) {
  const source = readFileSync(file, 'utf8');
  for (const match of source.matchAll(specifierPattern)) {
    const specifier = match[2];
    const where = relative(process.cwd(), file);
    if (specifier.startsWith('node:') || builtins.has(specifier)) continue;
    if (specifier.startsWith('.') || isAbsolute(specifier)) {
      const target = resolve(dirname(file), specifier);
      if (relative(root, target).startsWith('..'))
        problems.push(`${where}: imports ${specifier}, which is outside ${relative(process.cwd(), root)}`);
      else if (!existsSync(target)) problems.push(`${where}: imports ${specifier}, which does not exist`);
      continue;
    }
    problems.push(`${where}: imports the package '${specifier}'; the simulator image has no node_modules`);
  }
}
if (problems.length > 0) {
  console.error(`The simulator in ${root} cannot run in its image:\n  ${problems.join('\n  ')}`);
  console.error('src/sim/ may import only Node built-ins and files in src/sim.');
  process.exit(1);
}
