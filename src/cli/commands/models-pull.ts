/*
 * `cs-llm models pull <id>`: download a catalog GGUF for the cpu engine. Progress goes to stderr through the
 * one progress reporter (progress.ts: a bar with the rate on a terminal, a plain line at each 10% otherwise,
 * NDJSON lines with --json); the result goes to stdout (one JSON line with --json).
 */

import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { PullGgufResult } from '../../models/pull.js';
import { contextFor } from '../context.js';
import { formatBytes, paint, type Output } from '../output.js';
import { createProgressReporter, pullProgress } from '../progress.js';
import { cancellable } from '../cancellable.js';

function printResult(output: Output, result: PullGgufResult): void {
  if (result.status === 'present') {
    output.out(`already there: ${result.path} (${formatBytes(result.sizeBytes)}, size and sha256 match the catalog); nothing downloaded`);
  } else {
    const resumed = result.resumedFrom > 0 ? `, continued from ${formatBytes(result.resumedFrom)}` : '';
    output.out(
      `${paint(output, 'green', 'downloaded')}: ${result.path} (${formatBytes(result.sizeBytes)}${resumed}; size and sha256 match the catalog)`,
    );
  }
  output.out(`next: cs-llm up --engine cpu --model ${result.id}`);
}

export function registerPull(models: Command): void {
  models
    .command('pull <id>')
    .description('Download a GGUF model of the catalog for the cpu engine into CS_LLM_GGUF_DIR (resumable; size and sha256 checked)')
    .option('--json', 'print the result as one JSON line; progress as NDJSON on stderr')
    .option(
      '--endpoint <url>',
      'Hugging Face endpoint or mirror (config engine.hfEndpoint; else HF_ENDPOINT; default https://huggingface.co)',
    )
    .option('--dir <path>', 'download folder (default: CS_LLM_GGUF_DIR, else ~/.cache/cs-llm/models, where cs-llm up looks)')
    .action(async (id: string, opts: { json?: boolean; endpoint?: string; dir?: string }, command: Command) => {
      // The parent `models` has a --json of its own, which commander fills when it follows the subcommand.
      const json = Boolean(opts.json ?? (command.optsWithGlobals() as { json?: boolean }).json);
      const { loaded, output } = await contextFor(command, { engine: { hfEndpoint: opts.endpoint } });
      const [{ ggufDir, SHIPPED_MODELS_DIR }, { findModel, loadCatalog }, { pullGguf }] = await Promise.all([
        import('../../engine/cpu-plan.js'),
        import('../../models/catalog.js'),
        import('../../models/pull.js'),
      ]);
      const model = findModel(loadCatalog({ userModels: loaded.config.models }), id);
      const { resolveHfEndpoint } = await import('../../models/gguf-source.js');
      const { endpoint } = resolveHfEndpoint(loaded.config.engine.hfEndpoint, process.env);
      const renderer = await createProgressReporter(output, pullProgress(), { json });
      let result: PullGgufResult;
      try {
        result = await cancellable((signal) =>
          pullGguf({
            model,
            dir: opts.dir ? resolve(opts.dir) : ggufDir(process.env),
            endpoint,
            alsoLookIn: [SHIPPED_MODELS_DIR],
            token: process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN || undefined,
            onProgress: (event) => renderer.event(event),
            signal,
          }),
        );
      } finally {
        renderer.close();
      }
      if (json) output.out(JSON.stringify(result));
      else printResult(output, result);
    });
}
