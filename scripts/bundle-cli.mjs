// After tsc (npm run build): the CLI's entry and every module it imports, statically or with import(), linked
// by esbuild into files beside dist/cli/main.js (#21). Starting the CLI from ~45 files of its own plus
// commander's cost about 60 ms of CPU over node's start for `cs-llm --help`; from one file, a few.
//
// Four parts:
// - dist/cli/main.js, CommonJS (dist/cli/package.json says so): the entry, the program and the command table,
//   all that `cs-llm --help`, `--version` and a usage error run. node starts a CommonJS entry without its
//   ES module loader, which was about 20 ms of `--help`. (A V8 code cache for the same file, tried with
//   vm.Script's cachedData, gained nothing more; see docs/performance.md.)
// - dist/cli/shared.cjs, CommonJS: what the entry and the commands both use, once: the error classes (which
//   main.js recognises with instanceof), the terminal text filter, the version and commander.
// - dist/cli/cmd-<command>.mjs and chunk-<hash>.mjs, ES modules: each command and what it imports, loaded
//   with import() when the command line names the command. They take the shared modules from shared.mjs,
//   which requires shared.cjs: one copy of each class in both worlds.
// - dist/cli/help-<id>/<width>.txt: the top-level help, which main.js prints without loading commander.
// Every module is in the bundle exactly once (a dynamic import is a chunk, not a second copy), so classes such
// as the errors stay one class. Every file sits in dist/cli/, at the depth of every other dist/ folder, so
// paths built from import.meta.url (the package root, dist/cli/main.js for `daemon start`) are unchanged.
// Packages stay external (node_modules as installed), commander aside: it is what --help runs. Without
// esbuild (it comes with tsx, a devDependency) the build keeps tsc's files, which work the same, slower.

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'dist');
const dir = join(dist, 'cli');
let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  process.stderr.write('bundle-cli: esbuild is not installed; dist/cli stays as tsc wrote it (a slower start)\n');
  process.exit(0);
}
// tsc's ES module files are the input: no package.json of a previous build may make them CommonJS.
rmSync(join(dir, 'package.json'), { force: true });
for (const name of readdirSync(dir)) {
  if (/^(chunk-.*\.m?js|cmd-.*\.mjs|shared\.[cm]js)(\.map)?$|^help-[0-9a-f]+$|^help\.json$/.test(name))
    rmSync(join(dir, name), { recursive: true });
}

const sharedModules = new Set(['errors.js', 'terminal-text.js', 'version.js'].map((name) => join(dist, 'core', name)));
const commands = new Set(); // the command modules that the command table imports

const common = {
  absWorkingDir: resolve(dist, '..'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
};

// commander requires node:child_process when it loads, for subcommands that are executables of their own,
// which cs-llm has none of: loaded then, it and what it pulls in (net, dgram, streams: 10 of node's modules)
// were about 5 ms of every start, `--help` included. Required on first spawn instead. If the line is not there
// (another commander), the file is left as it is.
function lazyChildProcess(build) {
  build.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, async (args) => {
    const source = await readFile(args.path, 'utf8');
    const eager = "const childProcess = require('node:child_process');";
    const lazy = "const childProcess = { spawn: (...args) => require('node:child_process').spawn(...args) };";
    return { contents: source.replace(eager, lazy), loader: 'js' };
  });
}

/** The shared modules and commander from `shared` (none when bundling shared.cjs itself), other packages external. */
function externals(shared) {
  return (build) => {
    build.onResolve({ filter: /^\.\.?\// }, (args) =>
      shared && sharedModules.has(resolve(args.resolveDir, args.path)) ? { path: shared, external: true } : undefined,
    );
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path !== 'commander') return { path: args.path, external: true };
      return shared ? { path: shared, external: true } : undefined;
    });
  };
}

// shared.cjs, and shared.mjs for the ES chunks: an ES module that requires shared.cjs, so both worlds hold the
// same module. An ES import of the CommonJS file itself would have node parse it for its export names with
// its lexer, whose WebAssembly start cost about 80 ms of every command (`cs-llm config path` 193 -> 276 ms).
await esbuild.build({
  ...common,
  stdin: {
    contents: [
      "export * from '../core/errors.js';",
      "export * from '../core/terminal-text.js';",
      "export * from '../core/version.js';",
      'export { program, createCommand, createArgument, createOption, CommanderError, InvalidArgumentError,',
      "  InvalidOptionArgumentError, Command, Argument, Option, Help } from 'commander';",
    ].join('\n'),
    resolveDir: dir,
    sourcefile: 'cli-shared-entry.js',
  },
  outfile: join(dir, 'shared.cjs'),
  format: 'cjs',
  // version.ts finds package.json from its own file's URL.
  define: { 'import.meta.url': '__csLlmFileUrl' },
  banner: { js: "var __csLlmFileUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [
    { name: 'externals', setup: externals(null) },
    { name: 'commander', setup: lazyChildProcess },
  ],
});
const names = Object.keys(createRequire(import.meta.url)(join(dir, 'shared.cjs'))).filter((name) => name !== '__esModule');
writeFileSync(
  join(dir, 'shared.mjs'),
  "import { createRequire } from 'node:module';\n" +
    `export const { ${names.join(', ')} } = createRequire(import.meta.url)('./shared.cjs');\n`,
);

// help-<id>/<width>.txt: the top-level help as commander prints it (tsc's program.js), at each width where its
// wrapping changes, from 0 to where nothing wraps any more; main.js answers --help from the file for its width
// (src/cli/prebuilt-help.ts). The id, a hash of the texts, names the folder for this main.js only.
const { buildProgram } = await import(pathToFileURL(join(dir, 'program.js')).href);
async function helpAtWidth(width) {
  let text = '';
  const argv = ['node', 'cs-llm', '--help'];
  const output = { writeOut: (s) => (text += s), getOutHelpWidth: () => width, getOutHasColors: () => false };
  try {
    await (await buildProgram(argv, { output })).parseAsync(argv);
  } catch (err) {
    if (err?.code !== 'commander.helpDisplayed') throw err;
  }
  return text;
}
const unwrapped = await helpAtWidth(1e6);
const widths = [];
const texts = [];
const widest = Math.max(...unwrapped.split('\n').map((line) => line.length));
for (let width = 0; width <= widest; width++) {
  const text = await helpAtWidth(width);
  if (text !== texts.at(-1)) (widths.push(width), texts.push(text));
}
if (texts.at(-1) !== unwrapped) throw new Error('bundle-cli: the help still wraps at its longest line');
const help = {
  id: createHash('sha256')
    .update(JSON.stringify([widths, texts]))
    .digest('hex')
    .slice(0, 12),
  widths,
};
mkdirSync(join(dir, `help-${help.id}`));
widths.forEach((width, i) => writeFileSync(join(dir, `help-${help.id}`, `${width}.txt`), texts[i]));

// main.js: the command table's import('./commands/x.js') becomes import('./cmd-x.mjs'), built next.
const entry = await esbuild.build({
  ...common,
  metafile: true,
  entryPoints: [join(dir, 'main.js')],
  outfile: join(dir, 'main.js'),
  allowOverwrite: true,
  format: 'cjs',
  define: { __CS_LLM_HELP__: JSON.stringify(help) },
  plugins: [
    {
      name: 'commands',
      setup(build) {
        build.onResolve({ filter: /^\.\/commands\/[\w-]+\.js$/ }, (args) => {
          const chunk = `./cmd-${args.path.slice('./commands/'.length, -'.js'.length)}.mjs`;
          commands.add(resolve(args.resolveDir, args.path));
          return { path: chunk, external: true };
        });
      },
    },
    { name: 'externals', setup: externals('./shared.cjs') },
  ],
});
if (commands.size === 0) throw new Error('bundle-cli: main.js loads no command (src/cli/command-table.ts changed?)');

const chunks = await esbuild.build({
  ...common,
  metafile: true,
  entryPoints: [...commands],
  outdir: dir,
  splitting: true,
  format: 'esm',
  entryNames: 'cmd-[name]',
  chunkNames: 'chunk-[hash]',
  outExtension: { '.js': '.mjs' },
  // Packages loaded with createRequire need a require in an ES module.
  banner: {
    js: "import { createRequire as __csLlmCreateRequire } from 'node:module';\nconst require = __csLlmCreateRequire(import.meta.url);",
  },
  plugins: [{ name: 'externals', setup: externals('./shared.mjs') }],
});

// A module in both main.js and the commands' chunks would be two copies (two classes of the same name).
const twice = Object.keys(entry.metafile.inputs).filter((input) => input in chunks.metafile.inputs);
if (twice.length > 0)
  throw new Error(`bundle-cli: main.js and the commands' chunks both hold ${twice.join(', ')}: add it to sharedModules`);

// Last: while it exists, tsc's ES module files beside main.js would read as CommonJS (nothing loads them).
writeFileSync(join(dir, 'package.json'), '{ "type": "commonjs" }\n');
