import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ggufDir, SHIPPED_MODELS_DIR } from '../../engine/cpu-plan.js';
import { formatContext } from '../../models/fit.js';
import { ggufDownloadUrl, resolveHfEndpoint } from '../../models/gguf-source.js';
import { estimateRamCatalog, type RamInfo } from '../../models/ram-fit.js';
import type { Catalog } from '../../models/schema.js';
import { formatBytes, formatTable, paint, type Output, type Style } from '../output.js';

const verdictStyle: Record<string, Style> = { fits: 'green', tight: 'yellow', no: 'red' };

/** `cs-llm models --engine cpu`: the GGUF models with the RAM estimate for this machine. */
export function printCpuModels(
  output: Output,
  catalog: Catalog,
  ram: RamInfo,
  options: {
    json: boolean;
    context?: number;
    env: NodeJS.ProcessEnv;
    /** RAM from --ram, not this machine's. */ given?: boolean;
    hfEndpoint?: string;
  },
): void {
  const fits = estimateRamCatalog(catalog, ram, { context: options.context });
  const fileOf = (file: string | undefined) => {
    if (!file) return null;
    return [join(ggufDir(options.env), file), join(SHIPPED_MODELS_DIR, file)].find((p) => existsSync(p)) ?? null;
  };
  const endpoint = resolveHfEndpoint(options.hfEndpoint, options.env).endpoint;
  const downloadOf = (gguf: Catalog['models'][number]['gguf']) => (gguf ? ggufDownloadUrl(gguf, endpoint) : null);
  const fitting = fits.filter((f) => f.fit.verdict === 'fits');
  const recommended = fitting.length ? fitting.reduce((a, b) => (b.model.parameters > a.model.parameters ? b : a)).model.id : null;
  if (options.json) {
    output.json({
      engine: 'cpu',
      ram: ram,
      models: fits.map(({ model, fit }) => ({
        id: model.id,
        verdict: fit.verdict,
        maxModelLen: fit.maxModelLen,
        maxNumSeqs: fit.maxNumSeqs,
        requiredBytes: fit.requiredBytes,
        usableBytes: fit.usableBytes,
        reason: fit.reason,
        file: fileOf(model.gguf?.file),
        download: downloadOf(model.gguf),
      })),
      recommended,
    });
    return;
  }
  output.out(
    options.given
      ? `planning for: ${formatBytes(ram.availableBytes)} of available RAM (--ram; cpu engine, llama.cpp)`
      : `planning for: this machine's RAM, ${formatBytes(ram.availableBytes)} available of ${formatBytes(ram.totalBytes)} (cpu engine, llama.cpp)`,
  );
  const rows = fits.map(({ model, fit }) => [
    model.id,
    formatBytes(model.weightsBytes),
    fit.verdict,
    fit.maxModelLen === null ? '-' : formatContext(fit.maxModelLen),
    fit.maxNumSeqs === null ? '-' : String(fit.maxNumSeqs),
    formatBytes(fit.requiredBytes),
    fileOf(model.gguf?.file) ? 'here' : `missing (${model.gguf?.file})`,
  ]);
  if (output.isTTY) {
    const table = formatTable(['MODEL', 'WEIGHTS', 'VERDICT', 'CONTEXT', 'SEQS', 'NEEDS', 'FILE'], rows, output.columns).split('\n');
    const at = table[0]!.indexOf('VERDICT');
    output.out(
      [
        table[0]!,
        ...table.slice(1).map((line, i) => {
          const verdict = fits[i]!.fit.verdict;
          return line.slice(at, at + verdict.length) === verdict
            ? line.slice(0, at) + paint(output, verdictStyle[verdict]!, verdict) + line.slice(at + verdict.length)
            : line;
        }),
      ].join('\n'),
    );
    output.out('');
    for (const { model, fit } of fits) output.out(`${model.id}: ${fit.reason}`);
  } else {
    for (const [i, row] of rows.entries()) output.out([...row, fits[i]!.fit.reason].join('  '));
  }
  const pullable = fits.filter(({ model }) => !fileOf(model.gguf?.file) && downloadOf(model.gguf) && model.gguf?.sha256);
  if (pullable.length)
    output.out(`missing files: cs-llm models pull <id> downloads one and checks it, e.g. cs-llm models pull ${pullable[0]!.model.id}`);
  output.out(
    `GGUF files are looked for in ${ggufDir(options.env)} (CS_LLM_GGUF_DIR) and in the models shipped with cs-llm; any other: cs-llm up --engine cpu --model /path/to/model.gguf`,
  );
  const licence = fits.find((f) => f.model.id === recommended)?.model.license;
  output.out(
    recommended
      ? `recommended: ${recommended} (the largest that fits with room; licence: ${licence})`
      : 'recommended: none fits with room here; see the reasons above',
  );
}
