/*
 * `cs-llm bundle create|inspect|load`: offline bundles for air-gapped hosts. Thin: flags in, the bundle
 * service does the work, progress shown by the one progress reporter (progress.ts: a bar on a terminal, plain
 * lines otherwise, NDJSON on stderr with --json).
 */

import type { Command } from 'commander';
import { ExitCode, UsageError } from '../../core/errors.js';
import type { CreateBundleResult } from '../../bundle/create.js';
import type { LoadBundleResult } from '../../bundle/load.js';
import type { InspectResult } from '../../bundle/verify.js';
import { contextFor } from '../context.js';
import { formatBytes, formatTable, paint, type Output } from '../output.js';
import { bundleProgress, createProgressReporter } from '../progress.js';
import { cancellable } from '../cancellable.js';

function printCreate(output: Output, result: CreateBundleResult): void {
  const { manifest } = result;
  const files = manifest.members.filter((m) => m.role === 'model-file');
  output.out(`${paint(output, 'green', 'bundle written')}: ${result.file} (${formatBytes(result.sizeBytes)})`);
  output.out(`engine: ${manifest.engine}; image ${manifest.image.refs.join(', ')} (id ${manifest.image.id.slice(7, 19)})`);
  output.out(
    manifest.model.store === 'hf-cache'
      ? `model: ${manifest.model.id}: ${files.length} files of ${manifest.model.repo} at revision ${manifest.model.revision}`
      : `model: ${manifest.model.id} (the ${manifest.engine} engine needs no model files)`,
  );
  output.out(`next: copy the file to the offline host, then: cs-llm bundle load ${result.file}`);
}

function printInspect(output: Output, result: InspectResult): void {
  const { manifest } = result;
  output.out(`bundle: ${result.file} (${formatBytes(result.fileSize)})`);
  output.out(`created: ${manifest.createdAt} by cs-llm ${manifest.csLlmVersion}`);
  output.out(`engine: ${manifest.engine}`);
  output.out(
    `image: ${manifest.image.refs.join(', ')} id ${manifest.image.id} (${manifest.image.compression === 'gzip' ? 'gzip' : 'tar'})`,
  );
  output.out(`model: ${manifest.model.id}${manifest.model.repo ? ` (${manifest.model.repo}, revision ${manifest.model.revision})` : ''}`);
  const rows = manifest.members.map((m) => [
    m.path,
    m.type === 'file' ? formatBytes(m.size) : `-> ${m.target}`,
    m.type === 'file' ? m.sha256.slice(0, 16) : '',
  ]);
  output.out(formatTable(['member', 'size', 'sha256'], rows, output.isTTY ? output.columns : Infinity));
  if (result.verified) output.out(paint(output, 'green', `verified: all ${manifest.members.length} members match their size and sha256`));
}

function printLoad(output: Output, result: LoadBundleResult): void {
  const imageText = {
    'already-present': 'already present (same id), not loaded',
    tagged: 'already present, tags restored',
    loaded: 'loaded',
  }[result.image.action];
  output.out(`image ${result.image.refs.join(', ')}: ${imageText} (id ${result.image.id.slice(7, 19)})`);
  if (result.files.cacheDir) {
    output.out(
      `model files: ${result.files.written} written (${formatBytes(result.files.bytesWritten)}), ${result.files.skipped} already there, in ${result.files.cacheDir}`,
    );
  }
  if (!result.changed) output.out('nothing changed: this bundle was already loaded');
  for (const note of result.notes) output.out(`note: ${note}`);
  const gpus = result.engine === 'vllm' ? '' : ' --gpus none';
  output.out(`next: cs-llm up --offline --engine ${result.engine} --model ${result.model} --image ${result.image.refs[0]}${gpus}`);
}

interface CreateFlags {
  model?: string;
  engine?: string;
  image?: string;
  out?: string;
  gzip?: boolean;
  pullPolicy?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const bundle = program
    .command('bundle')
    .description('Offline bundles for air-gapped hosts: the engine image, the model files and a manifest in one file');

  bundle
    .command('create')
    .description(
      "Write one file with the engine image (saved by name), the model files from this host's cache, the catalog entry and a manifest of sizes and sha256s",
    )
    .requiredOption('--model <id>', 'catalog model id')
    .option('--engine <kind>', 'vllm, cpu or sim: the engine the target host runs (default: config engine.kind; auto means vllm)')
    .option('--image <ref>', "engine image by name (default: the engine's pinned image, or config engine.image)")
    .option('--out <file>', 'bundle file to write (default: ./cs-llm-bundle-<model>-<engine>.tar); never overwritten')
    .option('--gzip', 'gzip the image inside the bundle (smaller, slower to create; model files are stored as they are)')
    .option('--pull-policy <policy>', 'if the image is not here: if-missing (pull, the default), always, or never (refuse)')
    .option('--json', 'print the result as one JSON object; progress as NDJSON on stderr')
    .action(async (opts: CreateFlags, command: Command) => {
      if (opts.engine !== undefined && !['vllm', 'sim', 'cpu'].includes(opts.engine)) {
        throw new UsageError(`--engine must be vllm, cpu or sim, got "${opts.engine}"`, {
          next: 'Use --engine vllm for a GPU host, cpu for a CPU-only host, or sim for the simulator.',
        });
      }
      if (opts.pullPolicy !== undefined && !['if-missing', 'always', 'never'].includes(opts.pullPolicy)) {
        throw new UsageError(`--pull-policy must be if-missing, always or never, got "${opts.pullPolicy}"`);
      }
      const { loaded, output } = await contextFor(command, { engine: { pullPolicy: opts.pullPolicy } });
      const { createBundle } = await import('../../bundle/create.js');
      const renderer = await createProgressReporter(output, bundleProgress, { json: Boolean(opts.json) });
      let result: CreateBundleResult;
      try {
        result = await cancellable((signal) =>
          createBundle({
            model: opts.model!,
            engine: opts.engine,
            image: opts.image,
            out: opts.out,
            gzipImage: Boolean(opts.gzip),
            config: loaded.config,
            onProgress: (event) => renderer.event(event),
            signal,
          }),
        );
      } finally {
        renderer.close();
      }
      if (opts.json) output.json(result);
      else printCreate(output, result);
    });

  bundle
    .command('inspect')
    .description("Show a bundle's manifest and verify every member's size and sha256 (exit code 4 on any mismatch, naming the member)")
    .argument('<file>', 'bundle file')
    .option('--no-verify', 'only show the manifest')
    .option('--json', 'print {manifest, verified, problems} as JSON')
    .action(async (file: string, opts: { verify?: boolean; json?: boolean }, command: Command) => {
      const { output } = await contextFor(command);
      const { BundleIntegrityError, inspectBundle } = await import('../../bundle/verify.js');
      const renderer = await createProgressReporter(output, bundleProgress, { json: Boolean(opts.json) });
      let result: InspectResult;
      try {
        result = await cancellable((signal) =>
          inspectBundle(file, { verify: opts.verify !== false, onProgress: (event) => renderer.event(event), signal }),
        );
      } finally {
        renderer.close();
      }
      if (opts.json) {
        output.json(result);
        if (result.problems.length > 0) process.exitCode = ExitCode.environment;
        return;
      }
      printInspect(output, result);
      if (result.problems.length > 0) {
        throw new BundleIntegrityError(
          `bundle ${result.file} does not match its manifest: ${result.problems[0]}${result.problems.length > 1 ? ` (and ${result.problems.length - 1} more)` : ''}`,
          result.problems,
          {
            next: 'Copy the bundle again (compare sha256sum with the original), or create it again.',
          },
        );
      }
    });

  bundle
    .command('load')
    .description(
      'Verify every member, then load the image into Docker and put the model files into the cache atomically; loading twice changes nothing',
    )
    .argument('<file>', 'bundle file')
    .option('--json', 'print the result as one JSON object; progress as NDJSON on stderr')
    .action(async (file: string, opts: { json?: boolean }, command: Command) => {
      const { loaded, output } = await contextFor(command);
      const { loadBundle } = await import('../../bundle/load.js');
      const renderer = await createProgressReporter(output, bundleProgress, { json: Boolean(opts.json) });
      let result: LoadBundleResult;
      try {
        result = await cancellable((signal) =>
          loadBundle({ file, config: loaded.config, onProgress: (event) => renderer.event(event), signal }),
        );
      } finally {
        renderer.close();
      }
      if (opts.json) output.json(result);
      else printLoad(output, result);
    });
}
