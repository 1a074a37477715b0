import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { processStamp, recordedProcess, signalRecorded } from '../../src/core/process-identity.js';

/** A process that is not ours in spirit: what a reused PID points at after a crash or a reboot. */
async function stranger(t: { after(fn: () => void): void }) {
  const child = spawn('sleep', ['300'], { stdio: 'ignore' });
  await once(child, 'spawn');
  t.after(() => child.kill('SIGKILL'));
  // 'spawn' comes once exec has begun, but the kernel fills in the new command line a little later (the
  // close-on-exec pipe libuv waits on closes before the arguments are mapped): on a loaded box the window is hit
  // and /proc/PID/cmdline reads empty. Wait until it shows the command, as any later reader would see it.
  for (const deadline = Date.now() + 5000; !readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').startsWith('sleep');) {
    assert.ok(Date.now() < deadline, 'the stranger shows its command line');
    await new Promise((r) => setTimeout(r, 5));
  }
  return child;
}

test('a recorded PID with its start time is the running process while the start time and boot id match', () => {
  const stamp = processStamp(process.pid);
  assert.ok(stamp && /^\d+$/.test(stamp.startTicks), 'field 22 of /proc/self/stat');
  assert.match(stamp.bootId, /^[0-9a-f-]{36}$/);
  assert.equal(recordedProcess({ pid: process.pid, ...stamp }), 'running');
});

test('a PID whose start time or boot id differs belongs to another process now, and is never signalled', async (t) => {
  const child = await stranger(t);
  const stamp = processStamp(child.pid!)!;
  const earlier = { pid: child.pid!, startTicks: String(Number(stamp.startTicks) - 1), bootId: stamp.bootId };
  assert.equal(recordedProcess(earlier), 'replaced');
  const otherBoot = { pid: child.pid!, startTicks: stamp.startTicks, bootId: '00000000-0000-0000-0000-000000000000' };
  assert.equal(recordedProcess(otherBoot), 'replaced');
  assert.equal(signalRecorded(earlier, 'SIGTERM'), false);
  assert.equal(signalRecorded(otherBoot, 'SIGKILL'), false);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(child.exitCode, null, 'the stranger still runs');
  assert.equal(child.signalCode, null);
});

test('a record without a start time is trusted only when its command line is recognised', async (t) => {
  const child = await stranger(t);
  assert.equal(
    recordedProcess({ pid: child.pid! }, (argv) => argv[0] === 'sleep'),
    'running',
  );
  assert.equal(
    recordedProcess({ pid: child.pid! }, (argv) => argv.includes('daemon')),
    'replaced',
  );
  assert.equal(recordedProcess({ pid: child.pid! }), 'replaced');
});

test('an exited process is gone, and signalling it sends nothing', async () => {
  const child = spawn('true', { stdio: 'ignore' });
  await once(child, 'spawn');
  const stamp = processStamp(child.pid!);
  await once(child, 'exit');
  assert.equal(recordedProcess({ pid: child.pid!, ...stamp }), 'gone');
  assert.equal(signalRecorded({ pid: child.pid!, ...stamp }, 'SIGTERM'), false);
  assert.equal(recordedProcess({ pid: 0 }), 'gone');
});
