import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import type { FitGpu } from '../../models/fit.js';
import { contextFor, intFlag } from '../context.js';
import { formatTable, paint, type Style } from '../output.js';
import type { estimateError as EstimateError } from '../../models/measurements.js';
import { registerPull } from './models-pull.js';

const verdictStyle: Record<string, Style> = { fits: 'green', tight: 'yellow', no: 'red' };

/**
 * A VRAM size from --vram: "24GiB", "24GB", "24576MiB", "80G", or a bare number of GiB. GPU makers' "GB" on
 * a card means GiB (a "24 GB" card has 24564 MiB), so GB, G and GiB all read as GiB here; the same for MB
 * and TB.
 */
export function parseVramMiB(value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(t|tb|tib|g|gb|gib|m|mb|mib)?\s*$/i.exec(value);
  if (!match) {
    throw new UsageError(`--vram "${value}" is not a memory size`, { next: 'Write it like 24GiB, 24GB, 80G or 24576MiB.' });
  }
  const n = Number(match[1]);
  const unit = (match[2] ?? 'g').toLowerCase()[0];
  const mib = unit === 't' ? n * 1024 * 1024 : unit === 'm' ? n : n * 1024;
  if (mib < 256) throw new UsageError(`--vram ${value} is too small for any model`, { next: 'Give the card memory, e.g. --vram 24GiB.' });
  return Math.round(mib);
}

/** A RAM size from --ram (cpu engine): the same units as --vram, in bytes. */
export function parseRamBytes(value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(t|tb|tib|g|gb|gib|m|mb|mib)?\s*$/i.exec(value);
  if (!match) {
    throw new UsageError(`--ram "${value}" is not a memory size`, {
      next: 'Write it like 4GiB, 16GB or 2048MiB (the memory available to the engine).',
    });
  }
  const n = Number(match[1]);
  const unit = (match[2] ?? 'g').toLowerCase()[0];
  const mib = unit === 't' ? n * 1024 * 1024 : unit === 'm' ? n : n * 1024;
  if (mib < 64) throw new UsageError(`--ram ${value} is too small for any model`, { next: 'Give the available memory, e.g. --ram 4GiB.' });
  return Math.round(mib * 1024 ** 2);
}

/** The estimate's error against vLLM's figure, to a tenth of a percent (0.083 = the formula said 8.3% more). */
function roundedError(estimateError: typeof EstimateError, estimated: number, measured: number): number | null {
  const error = estimateError(estimated, measured);
  return error === null ? null : Math.round(error * 1000) / 1000;
}

/** The KV cache column: the estimate alone, or vLLM's figure beside the estimate and the error. */
function kvCell(
  estimateError: typeof EstimateError,
  fit: { kvCacheTokens: number; estimatedKvCacheTokens: number; measured: boolean; verdict: string },
): string {
  const k = (n: number) => `${(n / 1000).toFixed(1)}k`;
  if (!fit.measured) return fit.estimatedKvCacheTokens > 0 ? `${k(fit.estimatedKvCacheTokens)} est.` : '-';
  const error = estimateError(fit.estimatedKvCacheTokens, fit.kvCacheTokens);
  const pct = error === null ? '' : `, ${error >= 0 ? '+' : ''}${(error * 100).toFixed(1)}%`;
  return `${k(fit.kvCacheTokens)} measured (est. ${k(fit.estimatedKvCacheTokens)}${pct})`;
}

export function register(program: Command): void {
  const models = program
    .command('models')
    .description(
      'The model catalog with what fits: verdict, --max-model-len and --max-num-seqs for these GPUs (or a card given with --vram)',
    )
    .option('--json', 'print {"models": [...], "recommended": id|null} as JSON')
    .option('--gpus <sel>', 'GPUs to plan for: all, or indexes/UUIDs like 0,1 (config engine.gpus)')
    .option('--vram <size>', 'plan for a card that is not in this box, e.g. 24GiB (with --gpus 0,1: two such cards)')
    .option('--context <n>', 'check this --max-model-len instead of proposing one', intFlag('--context', { min: 1 }))
    .option('--gpu-memory-utilization <f>', "vLLM's share of each GPU's memory (config engine.gpuMemoryUtilization)", Number)
    .option('--engine <kind>', 'vllm (default: VRAM fit on the GPUs) or cpu (RAM fit of the GGUF models for llama.cpp)')
    .option('--ram <size>', "with --engine cpu: plan for this much available memory instead of this machine's, e.g. 4GiB")
    .action(
      async (
        opts: {
          json?: boolean;
          gpus?: string;
          vram?: string;
          context?: number;
          gpuMemoryUtilization?: number;
          engine?: string;
          ram?: string;
        },
        command: Command,
      ) => {
        if (opts.engine !== undefined && !['vllm', 'cpu'].includes(opts.engine)) {
          throw new UsageError(`--engine must be vllm or cpu, got "${opts.engine}"`, {
            next: "Use --engine cpu for the models llama.cpp runs on this machine's CPU and RAM.",
          });
        }
        if (opts.ram !== undefined && opts.engine !== 'cpu') {
          throw new UsageError('--ram plans the cpu engine', { next: 'Add --engine cpu, or use --vram to plan for a GPU.' });
        }
        const { loaded, output } = await contextFor(command, {
          engine: { gpus: opts.gpus, context: opts.context, gpuMemoryUtilization: opts.gpuMemoryUtilization },
        });
        const { config } = loaded;
        // Here, not at the top: `cs-llm --help` loads every command's registration (#21).
        const { loadCatalog } = await import('../../models/catalog.js');
        const { estimateCatalog, formatContext, formatGiB, recommendModel } = await import('../../models/fit.js');
        const { selectGpus, selectorCount } = await import('../../gpu/select.js');
        const { readRamInfo } = await import('../../models/ram.js');
        const catalog = loadCatalog({ userModels: config.models });
        if (opts.engine === 'cpu') {
          const { printCpuModels } = await import('./models-cpu.js');
          const ram =
            opts.ram === undefined ? readRamInfo() : { totalBytes: parseRamBytes(opts.ram), availableBytes: parseRamBytes(opts.ram) };
          printCpuModels(output, catalog, ram, {
            json: Boolean(opts.json),
            context: config.engine.context,
            env: process.env,
            given: opts.ram !== undefined,
            hfEndpoint: config.engine.hfEndpoint,
          });
          return;
        }

        let gpus: FitGpu[];
        let planningFor: string;
        let note: string | null = null;
        if (opts.vram !== undefined) {
          const mib = parseVramMiB(opts.vram);
          const count = Math.max(1, selectorCount(opts.gpus ?? 'all'));
          gpus = Array.from({ length: count }, (_, index) => ({
            index,
            name: `${opts.vram!.trim()} card`,
            memoryTotalMiB: mib,
            memoryFreeMiB: null,
          }));
          planningFor = `${count} x ${formatGiB(mib * 1024 ** 2)} card (--vram; free memory at start not known)`;
        } else {
          const { detectGpus } = await import('../../gpu/detect.js');
          const report = await detectGpus();
          const usable = report.usable ? report.gpus : [];
          gpus = selectGpus(usable, config.engine.gpus ?? 'all');
          planningFor = gpus.length
            ? gpus
                .map((g) => `GPU ${g.index} ${g.name} (${g.memoryTotalMiB === null ? '?' : formatGiB(g.memoryTotalMiB * 1024 ** 2)})`)
                .join(', ')
            : 'no usable NVIDIA GPU';
          if (report.problem) note = `${report.problem}${report.fix ? `. ${report.fix}` : ''}`;
        }
        // What vLLM reported on these GPUs before (cs-llm up keeps it) replaces the formula's KV cache.
        const { estimateError, measuredKvLookup, readMeasurements } = await import('../../models/measurements.js');
        const measuredKvTokens = measuredKvLookup(readMeasurements(loaded.paths.stateDir), config.engine.gpuMemoryUtilization);
        const fitOptions = { gpuMemoryUtilization: config.engine.gpuMemoryUtilization, context: config.engine.context, measuredKvTokens };
        const fits = estimateCatalog(catalog, gpus, fitOptions);
        const recommended = recommendModel(catalog, gpus, fitOptions)?.model.id ?? null;

        if (opts.json) {
          output.json({
            models: fits.map(({ model, fit }) => ({
              id: model.id,
              verdict: fit.verdict,
              maxModelLen: fit.maxModelLen,
              maxNumSeqs: fit.maxNumSeqs,
              requiredBytes: fit.requiredBytes,
              usableBytes: fit.usableBytes,
              kvCacheTokens: fit.kvCacheTokens,
              fitSource: fit.measured ? 'measured' : 'estimated',
              estimatedKvCacheTokens: fit.estimatedKvCacheTokens,
              measuredKvCacheTokens: fit.measured ? fit.kvCacheTokens : null,
              estimateError: fit.measured ? roundedError(estimateError, fit.estimatedKvCacheTokens, fit.kvCacheTokens) : null,
              reason: fit.reason,
            })),
            recommended,
          });
          return;
        }

        output.out(`planning for: ${planningFor}, gpu-memory-utilization ${config.engine.gpuMemoryUtilization}`);
        if (note) output.out(`${paint(output, 'yellow', 'note')}: ${note}`);
        const headers = ['MODEL', 'WEIGHTS', 'VERDICT', 'CONTEXT', 'SEQS', 'TP', 'NEEDS', 'USABLE', 'KV CACHE'];
        const rows = fits.map(({ model, fit }) => [
          model.id,
          formatGiB(model.weightsBytes),
          fit.verdict,
          fit.maxModelLen === null ? '-' : formatContext(fit.maxModelLen),
          fit.maxNumSeqs === null ? '-' : String(fit.maxNumSeqs),
          String(fit.tensorParallel),
          formatGiB(fit.requiredBytes),
          formatGiB(fit.usableBytes),
          kvCell(estimateError, fit),
        ]);
        if (output.isTTY) {
          // On a narrow terminal drop the least useful columns before cutting any cell (the id must stay whole).
          let keep = headers.map((_, i) => i);
          for (const drop of ['KV CACHE', 'WEIGHTS', 'TP', 'USABLE', 'NEEDS']) {
            const full = formatTable(
              keep.map((i) => headers[i]!),
              rows.map((r) => keep.map((i) => r[i]!)),
            );
            if (Math.max(...full.split('\n').map((l) => l.length)) <= output.columns) break;
            keep = keep.filter((i) => headers[i] !== drop);
          }
          const table = formatTable(
            keep.map((i) => headers[i]!),
            rows.map((r) => keep.map((i) => r[i]!)),
            output.columns,
          ).split('\n');
          const verdictAt = table[0]!.indexOf('VERDICT');
          output.out(
            [
              table[0]!,
              ...table.slice(1).map((line, i) => {
                const verdict = fits[i]!.fit.verdict;
                // Only color a verdict the narrow-terminal shrink left whole.
                if (line.slice(verdictAt, verdictAt + verdict.length) !== verdict) return line;
                return line.slice(0, verdictAt) + paint(output, verdictStyle[verdict]!, verdict) + line.slice(verdictAt + verdict.length);
              }),
            ].join('\n'),
          );
          output.out('');
          for (const { model, fit } of fits) output.out(`${model.id}: ${fit.reason}`);
        } else {
          for (const [i, row] of rows.entries()) output.out([...row, fits[i]!.fit.reason].join('  '));
        }
        output.out(
          recommended
            ? `recommended: ${recommended} (the largest model that fits with room)`
            : 'recommended: none fits with room here; see the reasons above, or plan with --vram for another card',
        );
      },
    );
  registerPull(models);
}
