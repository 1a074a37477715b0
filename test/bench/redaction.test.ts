// The redaction bench's messages are what its report says they are (no timing is asserted).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { benchRedaction } from '../../src/bench/redaction.js';

test('the redaction bench measures about 1 KB messages: typical and dense ones with personal data, plain ones without', () => {
  const results = benchRedaction(2);
  assert.deepEqual(
    results.map((r) => r.kind),
    ['typical', 'dense', 'plain'],
  );
  for (const r of results) {
    assert.ok(r.bytes >= 1000 && r.bytes <= 1100, `${r.kind}: ${r.bytes} bytes`);
    assert.ok(r.p50UsPerKb > 0 && r.p99UsPerKb >= r.p50UsPerKb);
  }
  assert.equal(results[2]!.valuesPerMessage, 0);
  assert.ok(results[0]!.valuesPerMessage >= 3 && results[1]!.valuesPerMessage > results[0]!.valuesPerMessage);
});
