import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConflictError, EngineError, EnvironmentError } from '../../src/core/errors.js';
import { dockerFailure, startFailure } from '../../src/engine/container.js';
import { demuxLogBuffer } from '../../src/engine/container-logs.js';

function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

test("Docker's multiplexed log frames are joined back into text, stdout and stderr in order", () => {
  assert.equal(demuxLogBuffer(Buffer.concat([frame(1, 'out 1\n'), frame(2, 'err 1\n'), frame(1, 'out 2\n')])), 'out 1\nerr 1\nout 2\n');
  assert.equal(demuxLogBuffer(Buffer.from('')), '');
});

test("a lost Docker connection is the host's problem; another Docker failure is the engine's", () => {
  const lost = dockerFailure(Object.assign(new Error('connect ENOENT /var/run/docker.sock'), { code: 'ENOENT' }), 'starting the engine');
  assert.ok(lost instanceof EnvironmentError);
  assert.match(lost.message, /lost the Docker Engine while starting the engine/);
  const other = dockerFailure(
    { statusCode: 500, json: { message: 'driver failed' }, message: '(HTTP code 500) server error - driver failed' },
    'removing the engine',
  );
  assert.ok(other instanceof EngineError);
  assert.match(other.message, /failed while removing the engine: driver failed/);
});

test('start failures map to the error a person can act on: port in use is a conflict, no GPU runtime the host', () => {
  const port = startFailure({
    statusCode: 500,
    json: { message: 'Error starting userland proxy: listen tcp4 127.0.0.1:8000: bind: address already in use' },
  });
  assert.ok(port instanceof ConflictError);
  assert.match((port as ConflictError).next!, /--port/);
  const gpu = startFailure({ statusCode: 500, json: { message: 'could not select device driver "nvidia" with capabilities: [[gpu]]' } });
  assert.ok(gpu instanceof EnvironmentError);
  assert.deepEqual((gpu as EnvironmentError).details, ['could not select device driver "nvidia" with capabilities: [[gpu]]']);
});
