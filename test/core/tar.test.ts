import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { execa } from 'execa';
import { parsePaxRecords, parseTarHeader, TAR_BLOCK, tarEnd, tarHeader, tarPadding, type TarHeaderFields } from '../../src/core/tar.js';

const dir = mkdtempSync(join(tmpdir(), 'cs-llm-tar-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function archive(entries: Array<{ fields: Omit<TarHeaderFields, 'size' | 'mode' | 'mtime'>; data?: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const { fields, data } of entries) {
    const size = data?.length ?? 0;
    parts.push(tarHeader({ mode: fields.type === 'directory' ? 0o755 : 0o644, mtime: 1_700_000_000, size, ...fields }));
    if (data) parts.push(data, Buffer.alloc(tarPadding(size)));
  }
  parts.push(tarEnd());
  return Buffer.concat(parts);
}

test('GNU tar extracts what the writer produces: files, folders, links, and paths too long for ustar (pax)', async () => {
  const longDir = `models/hf-cache/hub/models--some-organisation--${'a-really-long-model-name-'.repeat(4)}/snapshots/${'f'.repeat(40)}`;
  const longTarget = `../../blobs/${'e'.repeat(64)}/${'x'.repeat(60)}`;
  const file = join(dir, 'a.tar');
  writeFileSync(
    file,
    archive([
      { fields: { path: 'folder', type: 'directory' } },
      { fields: { path: 'folder/hello.txt', type: 'file' }, data: Buffer.from('hello\n') },
      { fields: { path: `${longDir}/config.json`, type: 'file' }, data: Buffer.from('{}') },
      { fields: { path: 'folder/link', type: 'symlink', linkTarget: 'hello.txt' } },
      { fields: { path: 'folder/long-link', type: 'symlink', linkTarget: longTarget } },
    ]),
  );
  const out = join(dir, 'out');
  await execa('mkdir', ['-p', out]);
  await execa('tar', ['-xf', file, '-C', out]);
  assert.equal(readFileSync(join(out, 'folder/hello.txt'), 'utf8'), 'hello\n');
  assert.equal(readFileSync(join(out, longDir, 'config.json'), 'utf8'), '{}');
  assert.equal(readlinkSync(join(out, 'folder/link')), 'hello.txt');
  assert.equal(readlinkSync(join(out, 'folder/long-link')), longTarget);
});

test('the reader parses what the writer wrote, and pax records carry the long path', () => {
  const longPath = `${'d'.repeat(200)}/file.bin`;
  const header = tarHeader({ path: longPath, type: 'file', size: 10, mode: 0o644, mtime: 0 });
  assert.equal(header.length, 3 * TAR_BLOCK);
  const pax = parseTarHeader(header.subarray(0, TAR_BLOCK))!;
  assert.equal(pax.typeFlag, 'x');
  assert.equal(parsePaxRecords(header.subarray(TAR_BLOCK, TAR_BLOCK + pax.size)).path, longPath);
  const real = parseTarHeader(header.subarray(2 * TAR_BLOCK))!;
  assert.deepEqual([real.typeFlag, real.size], ['0', 10]);
  assert.equal(parseTarHeader(Buffer.alloc(TAR_BLOCK)), null);
});

test("sizes above ustar's 8 GiB limit are written in base-256 and read back exactly", () => {
  const size = 20 * 1024 ** 3 + 12345;
  const header = tarHeader({ path: 'model.gguf', type: 'file', size, mode: 0o644, mtime: 0 });
  assert.equal(header.length, TAR_BLOCK);
  assert.equal(header[124]! & 0x80, 0x80);
  assert.equal(parseTarHeader(header)!.size, size);
});

test('a header with one changed byte fails its checksum', () => {
  const header = tarHeader({ path: 'a.txt', type: 'file', size: 1, mode: 0o644, mtime: 0 });
  header[0] = 'b'.charCodeAt(0);
  assert.throws(() => parseTarHeader(header), /checksum/);
});
