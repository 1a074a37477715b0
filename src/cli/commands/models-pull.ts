/*
 * `cs-llm models pull <id>`: download a catalog GGUF for the cpu engine. Progress goes to stderr: a redrawn
 * bar on a terminal, a plain line at each 10% otherwise, NDJSON lines with --json; the result goes to
 * stdout (one JSON line with --json).
 */

import type { Command } from 'commander';
import { resolve } from 'node:path';
import { ggufDir, SHIPPED_MODELS_DIR } from '../../engine/cpu-plan.js';
import { findModel, loadCatalog } from '../../models/catalog.js';
import { resolveHfEndpoint } from '../../models/gguf-source.js';
import { pullGguf, type GgufPullProgress, type PullGgufResult } from '../../models/pull.js';
import { terminalLine } from '../../core/terminal-text.js';
import { contextFor } from '../context.js';
import { formatBytes, paint, type Output } from '../output.js';
import { progressBar } from '../progress.js';
import { cancellable } from '../cancellable.js';

export interface PullRenderer {
  listener(event: GgufPullProgress): void;
  close(): void;
}

/** Pure: the percent step (0, 10, ... 100) a byte count has reached, or null when the total is unknown. */
export function percentStep(done: number, total: number | null, step = 10): number | null {
  if (total === null || total <= 0) return null;
  return Math.min(100, Math.floor((done / total) * (100 / step)) * step);
}

export function formatPullBytes(done: number, total: number | null): string {
  return total === null ? `${formatBytes(done)}` : `${Math.floor((done / total) * 100)}% (${formatBytes(done)} of ${formatBytes(total)})`;
}

export function createPullRenderer(
  output: Output,
  options: {
    json: boolean;
    tty: boolean;
    write: (text: string) => void;
    now?: () => number;
    /** Of the terminal written to; 0 (unknown) reads as 100. */ columns?: number;
  },
): PullRenderer {
  const now = options.now ?? Date.now;
  const line = (text: string) => options.write(text.endsWith('\n') ? text : `${text}\n`);
  // Names, URLs and error texts from outside: one line, no control characters.
  const textLine = (text: string) => line(terminalLine(text));
  let lastStep: number | null = -1;
  let unknownAt = 0;
  const stepped = (event: Extract<GgufPullProgress, { type: 'bytes' }>): boolean => {
    const step = percentStep(event.doneBytes, event.totalBytes);
    if (step === null) {
      // No total known: a line every 5 s instead of every 10%.
      if (now() - unknownAt < 5000) return false;
      unknownAt = now();
      return true;
    }
    if (step === lastStep) return false;
    lastStep = step;
    return true;
  };
  if (options.json) {
    return {
      listener(event) {
        if (event.type === 'bytes' && !stepped(event)) return;
        line(JSON.stringify({ type: 'progress', event }));
      },
      close() {},
    };
  }
  if (options.tty) {
    let live = false;
    let lastDraw = 0;
    let started = { at: now(), from: 0 };
    const clear = () => {
      if (live) options.write('\r\u001b[2K');
      live = false;
    };
    return {
      listener(event) {
        if (event.type === 'bytes') {
          if (now() - lastDraw < 100 && event.doneBytes !== event.totalBytes) return;
          lastDraw = now();
          const seconds = (now() - started.at) / 1000;
          const rate = seconds > 1 ? ` ${formatBytes((event.doneBytes - started.from) / seconds)}/s` : '';
          const bar = event.totalBytes ? `${progressBar(event.doneBytes / event.totalBytes)} ` : '';
          clear();
          options.write(
            `${bar}${formatPullBytes(event.doneBytes, event.totalBytes)}${rate}`.slice(
              0,
              Math.max(40, (options.columns ?? output.columns) || 100) - 1,
            ),
          );
          live = true;
          return;
        }
        clear();
        if (event.type === 'start') {
          started = { at: now(), from: event.resumeFrom };
          textLine(`downloading ${event.url}${event.resumeFrom > 0 ? ` (continuing from ${formatBytes(event.resumeFrom)})` : ''}`);
        } else if (event.type === 'verifying') line('checking size and sha256');
        else textLine(event.message);
      },
      close: clear,
    };
  }
  return {
    listener(event) {
      if (event.type === 'bytes') {
        if (stepped(event)) line(`downloaded ${formatPullBytes(event.doneBytes, event.totalBytes)}`);
      } else if (event.type === 'start') {
        textLine(
          `downloading ${event.url} to ${event.path}${event.resumeFrom > 0 ? ` (continuing the part file from ${formatBytes(event.resumeFrom)})` : ''}`,
        );
      } else if (event.type === 'verifying') line('checking size and sha256');
      else textLine(event.message);
    },
    close() {},
  };
}

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
      const { loaded, output } = contextFor(command, { engine: { hfEndpoint: opts.endpoint } });
      const model = findModel(loadCatalog({ userModels: loaded.config.models }), id);
      const { endpoint } = resolveHfEndpoint(loaded.config.engine.hfEndpoint, process.env);
      const renderer = createPullRenderer(output, {
        json,
        tty: Boolean(process.stderr.isTTY),
        write: (text) => process.stderr.write(text),
        columns: process.stderr.columns,
      });
      let result: PullGgufResult;
      try {
        result = await cancellable((signal) =>
          pullGguf({
            model,
            dir: opts.dir ? resolve(opts.dir) : ggufDir(process.env),
            endpoint,
            alsoLookIn: [SHIPPED_MODELS_DIR],
            token: process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN || undefined,
            onProgress: renderer.listener,
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
