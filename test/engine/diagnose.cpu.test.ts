/* The cpu engine's own failure lines, as it prints them, are recognised by `up`'s diagnosis. */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diagnose } from '../../src/engine/diagnose.js';
import { CpuEngineLoadError, startCpuEngine } from '../../src/cpu/server.js';
import { requireCpuRuntime, TINY_MEMORY } from '../helpers/cpu-runtime.js';

async function failureLine(options: Partial<Parameters<typeof startCpuEngine>[0]>): Promise<string[]> {
  const lines: string[] = [];
  await assert.rejects(
    startCpuEngine({ modelPath: TINY_MEMORY, port: 0, threads: 1, log: (l) => lines.push(l), ...options }),
    CpuEngineLoadError,
  );
  return lines;
}

test(
  'the engine log lines of a missing file, a non-GGUF file, a bad checksum and a too-long context each get their diagnosis',
  { timeout: 120_000 },
  async (t) => {
    if (!requireCpuRuntime(t)) return;
    assert.equal(diagnose(await failureLine({ modelPath: '/models/nope.gguf' }))?.kind, 'model-file-missing');
    assert.equal(diagnose(await failureLine({ modelPath: new URL(import.meta.url).pathname }))?.kind, 'model-not-gguf');
    assert.equal(diagnose(await failureLine({ sha256: 'f'.repeat(64) }))?.kind, 'model-checksum');
    const context = diagnose(await failureLine({ ctxSize: 2048 }));
    assert.equal(context?.kind, 'context-too-large');
    assert.equal(context?.maxContext, 512);
    assert.equal(context?.fix, 'Use --context 512 or less.');
  },
);

test('an allocation failure while loading reads as not enough memory', () => {
  const d = diagnose(['ERROR not enough memory to load the model or its context: failed to create context']);
  assert.equal(d?.kind, 'host-memory');
  assert.equal(d?.environment, true);
});
