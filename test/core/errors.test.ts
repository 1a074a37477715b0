import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EnvironmentError, ExitCode, exitCodeOf, renderError } from '../../src/core/errors.js';
import { redactSecrets } from '../../src/core/log.js';

test('a user error renders its message and next step without a stack trace', () => {
  const err = new EnvironmentError('Docker Engine is not reachable at /var/run/docker.sock', {
    next: 'Start dockerd, or set DOCKER_HOST.',
  });
  const text = renderError(err, { verbose: false });
  assert.match(text, /^error: Docker Engine is not reachable/);
  assert.match(text, /next: Start dockerd/);
  assert.doesNotMatch(text, /at .*\.ts:\d+/);
  assert.equal(exitCodeOf(err), ExitCode.environment);
});

test('verbose rendering shows the cause chain', () => {
  const err = new EnvironmentError('outer', { cause: new Error('inner reason') });
  assert.match(renderError(err, { verbose: true }), /caused by: Error: inner reason/);
});

test('an unexpected error is reported as a bug with exit code 1', () => {
  const text = renderError(new TypeError('x is undefined'), { verbose: false });
  assert.match(text, /bug in cs-llm/);
  assert.equal(exitCodeOf(new TypeError('x')), 1);
});

test('secrets are redacted from log lines', () => {
  // Look-alike tokens built at run time, so secret scanners do not flag this file.
  const hf = `hf_${'abcdefgh'.repeat(2)}`;
  const sk = `sk-${'abcdefgh'.repeat(3)}`;
  const line = redactSecrets(`Authorization: Bearer abc.def-123 token=${hf} key ${sk}`);
  assert.doesNotMatch(line, new RegExp(`abc\\.def-123|${hf}|${sk}`));
  assert.match(line, /\[redacted\]/);
});
