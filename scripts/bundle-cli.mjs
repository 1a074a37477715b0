// After tsc (npm run build): the CLI's entry and every module it imports, statically or with import(), linked
// by esbuild into dist/cli/main.js and shared chunks beside it (#21). Starting the CLI from ~45 files of its
// own plus commander's cost about 60 ms of CPU over node's start for `cs-llm --help`; from one file, a few.
// Every module is in the bundle exactly once (a dynamic import is a chunk, not a second copy), so classes
// such as the errors stay one class. The chunks sit in dist/cli/, at the depth of every other dist/ folder,
// so paths built from import.meta.url (the package root, dist/cli/main.js for `daemon start`) are unchanged.
// Packages stay external (node_modules as installed), commander aside: it is what --help runs. Without
// esbuild (it comes with tsx, a devDependency) the build keeps tsc's files, which work the same, slower.

import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'dist', 'cli');
let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  process.stderr.write('bundle-cli: esbuild is not installed; dist/cli stays as tsc wrote it (a slower start)\n');
  process.exit(0);
}
for (const name of readdirSync(dir)) if (/^chunk-.*\.js(\.map)?$/.test(name)) rmSync(join(dir, name));
await esbuild.build({
  entryPoints: [join(dir, 'main.js')],
  outdir: dir,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  chunkNames: 'chunk-[hash]',
  logLevel: 'warning',
  // commander is CommonJS: inlined, its require() of node's modules needs a require in the bundle.
  banner: {
    js: "import { createRequire as __csLlmCreateRequire } from 'node:module';\nconst require = __csLlmCreateRequire(import.meta.url);",
  },
  plugins: [
    {
      name: 'packages-external-but-commander',
      setup(build) {
        build.onResolve({ filter: /^[^./]/ }, (args) => (args.path === 'commander' ? undefined : { path: args.path, external: true }));
        // commander requires node:child_process at load, for subcommands that are executables of their own,
        // which cs-llm has none of: loaded then, it and what it pulls in (net, dgram, streams: 10 of node's
        // modules) were about 5 ms of every start, `--help` included. Required on first spawn instead. If the
        // line is not there (another commander), the file is left as it is.
        build.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, async (args) => {
          const { readFile } = await import('node:fs/promises');
          const source = await readFile(args.path, 'utf8');
          const eager = "const childProcess = require('node:child_process');";
          const lazy = "const childProcess = { spawn: (...args) => require('node:child_process').spawn(...args) };";
          return { contents: source.replace(eager, lazy), loader: 'js' };
        });
      },
    },
  ],
});
