import assert from 'node:assert/strict';
import { test } from 'node:test';
import { execa } from 'execa';
import { librariesFromLdd, tarStream } from '../../src/engine/sim-image.js';

test('the tar stream built in Node is read back by tar, long paths and directory modes included', async () => {
  const long = `app/dist/sim/${'deep/'.repeat(20)}file.js`;
  const entries = [
    { path: 'tmp', mode: 0o1777 },
    { path: 'app', mode: 0o755 },
    { path: 'app/package.json', mode: 0o644, data: Buffer.from('{"type":"module"}\n') },
    { path: long, mode: 0o644, data: Buffer.alloc(1000, 'x') },
  ];
  const listing = await execa('tar', ['-tvf', '-'], { input: tarStream(entries, 0) });
  const lines = listing.stdout.split('\n');
  assert.match(lines[0]!, /^drwxrwxrwt .* tmp\/$/);
  assert.match(lines[2]!, /^-rw-r--r-- root\/root +18 .* app\/package\.json$/);
  assert.ok(lines[3]!.endsWith(long), lines[3]);
  assert.match(lines[3]!, / 1000 /);
  const content = await execa('tar', ['-xOf', '-', 'app/package.json'], { input: tarStream(entries, 0) });
  assert.equal(content.stdout, '{"type":"module"}');
});

test('ldd output gives the library paths and the dynamic loader', () => {
  const output = [
    '\tlinux-vdso.so.1 (0x00007ffd)',
    '\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f)',
    '\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f)',
    '\t/lib64/ld-linux-x86-64.so.2 (0x00007f)',
  ].join('\n');
  assert.deepEqual(librariesFromLdd(output), [
    '/lib/x86_64-linux-gnu/libdl.so.2',
    '/lib/x86_64-linux-gnu/libstdc++.so.6',
    '/lib64/ld-linux-x86-64.so.2',
  ]);
});
