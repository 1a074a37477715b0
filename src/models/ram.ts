import { readFileSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';
import { parseMeminfo, type RamInfo } from './ram-fit.js';

/** This machine's memory: /proc/meminfo where there is one (MemAvailable), else node's os figures. */
export function readRamInfo(meminfoFile = '/proc/meminfo'): RamInfo {
  try {
    const parsed = parseMeminfo(readFileSync(meminfoFile, 'utf8'));
    if (parsed) return parsed;
  } catch {
    // not Linux, or no /proc: fall through
  }
  return { totalBytes: totalmem(), availableBytes: freemem() };
}
