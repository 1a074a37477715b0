import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSince } from '../../../src/cli/commands/audit.js';

test('audit export --since takes a duration back from now or a date/time, and refuses anything else', () => {
  const now = Date.parse('2026-02-01T00:00:00Z');
  assert.equal(parseSince('30d', now), Date.parse('2026-01-02T00:00:00Z'));
  assert.equal(parseSince('12h', now), Date.parse('2026-01-31T12:00:00Z'));
  assert.equal(parseSince('2026-01-31T12:00:00Z', now), Date.parse('2026-01-31T12:00:00Z'));
  assert.throws(() => parseSince('yesterday', now), /neither a duration nor a time/);
});
