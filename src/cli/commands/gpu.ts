import type { Command } from 'commander';
import type { GpuInfo } from '../../gpu/parse.js';
import { contextFor } from '../context.js';
import { formatBytes, formatTable, paint } from '../output.js';

const MiB = 1024 ** 2;

function memory(gpu: GpuInfo): string {
  if (gpu.memoryTotalMiB === null) return '-';
  const used = gpu.memoryUsedMiB === null ? '?' : (gpu.memoryUsedMiB / 1024).toFixed(1);
  return `${used} / ${formatBytes(gpu.memoryTotalMiB * MiB)}`;
}

function cut(line: string, width: number): string {
  return line.length > width ? `${line.slice(0, Math.max(0, width - 1))}…` : line;
}

function orDash(value: number | string | null, unit = ''): string {
  return value === null ? '-' : `${value}${unit}`;
}

function notes(gpu: GpuInfo): string {
  const out: string[] = [];
  if (gpu.displayActive) out.push('drives a display');
  if (gpu.migMode === 'enabled') {
    const counts = new Map<string, number>();
    for (const d of gpu.migDevices) counts.set(d.profile, (counts.get(d.profile) ?? 0) + 1);
    const slices = [...counts].map(([profile, n]) => `${n} x ${profile}`).join(', ');
    out.push(`MIG on${slices ? `: ${slices}` : ''}`);
  }
  return out.join('; ');
}

export function register(program: Command): void {
  program
    .command('gpu')
    .description('List the GPUs: memory, use, temperature, power, driver and compute capability (nvidia-smi)')
    .option('--json', 'print {"source", "gpus": [...]} as JSON')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const { output } = await contextFor(command);
      const { detectGpus } = await import('../../gpu/detect.js');
      const report = await detectGpus();
      if (opts.json) {
        output.json({
          source: report.source,
          gpus: report.gpus,
          usable: report.usable,
          driverVersion: report.driverVersion,
          migEnabled: report.migEnabled ?? false,
          problem: report.problem ?? null,
          fix: report.fix ?? null,
        });
        return;
      }
      if (report.gpus.length > 0) {
        const rows = report.gpus.map((g) => [
          String(g.index),
          g.name,
          memory(g),
          g.memoryFreeMiB === null ? '-' : formatBytes(g.memoryFreeMiB * MiB),
          orDash(g.utilizationPct, '%'),
          orDash(g.temperatureC, 'C'),
          g.powerW === null ? '-' : `${g.powerW.toFixed(0)} W`,
          orDash(g.computeCapability),
          notes(g),
          g.uuid ?? '-',
        ]);
        // The UUID (for --gpus) is last, so a narrow terminal cuts it before anything else.
        const headers = ['GPU', 'NAME', 'MEMORY USED', 'FREE', 'UTIL', 'TEMP', 'POWER', 'CC', 'NOTES', 'UUID'];
        const table = formatTable(headers, rows, Infinity);
        output.out(
          output.isTTY
            ? table
                .split('\n')
                .map((line) => cut(line, output.columns))
                .join('\n')
            : table,
        );
      }
      const driver = report.driverVersion ? `, driver ${report.driverVersion}` : '';
      const usable = report.usable ? 'usable by the NVIDIA engine' : paint(output, 'yellow', 'not usable by the NVIDIA engine');
      output.out(`source: ${report.source}${driver}; ${report.gpus.length} GPU(s), ${usable}`);
      if (report.problem) output.out(`${paint(output, 'yellow', 'problem')}: ${report.problem}`);
      if (report.fix) output.out(`fix: ${report.fix}`);
    });
}
