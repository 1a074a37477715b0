import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { unitPaths } from '../../src/daemon/service-account.js';
import { ROOT } from '../helpers/cli.js';
import { cli } from './harness.js';

const isRoot = process.getuid?.() === 0;
const inCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
const hasAnalyze = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;

/** A CS_LLM_HOME outside /tmp (the repository's ignored .state/), so PrivateTmp may be on. */
function homeOutsideTmp(t: { after(fn: () => void): void }): string {
  mkdirSync(join(ROOT, '.state'), { recursive: true });
  const dir = mkdtempSync(join(ROOT, '.state', 'unit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function directives(unit: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) map.set(m[1]!, [...(map.get(m[1]!) ?? []), m[2]!]);
  }
  return map;
}

/** systemd-analyze verify accepts it without a single warning; skipped where systemd is not installed (never in CI). */
function verify(t: { skip(message: string): void }, unit: string): void {
  if (!hasAnalyze) {
    if (inCi) assert.fail('systemd-analyze is missing in CI (.ci/run installs systemd)');
    t.skip('systemd-analyze is not installed');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-unit-'));
  const file = join(dir, 'cs-llm.service');
  writeFileSync(file, unit);
  const result = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  rmSync(dir, { recursive: true, force: true });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stderr.trim(), '', `systemd-analyze verify warned:\n${result.stderr}`);
}

test('daemon unit runs the daemon as the invoking user, sandboxed, writing only its state directory; systemd-analyze verify accepts it', async (t) => {
  const dir = homeOutsideTmp(t);
  const result = await cli(['daemon', 'unit'], { env: { CS_LLM_HOME: dir } });
  assert.equal(result.exitCode, 0, result.stderr);
  const unit = result.stdout;
  const d = directives(unit);
  assert.deepEqual(d.get('User'), [userInfo().username], 'User= is always there');
  assert.match(unit, /ExecStart=\S+node\S* .* daemon run\n/);
  assert.deepEqual(d.get('Environment'), [`CS_LLM_HOME=${dir}`]);
  const expected: Record<string, string> = {
    UMask: '0077',
    NoNewPrivileges: 'yes',
    ProtectSystem: 'strict',
    ReadWritePaths: realpathSync(join(dir, 'state')),
    ProtectHome: 'yes',
    // The install itself under /tmp (a checkout in /tmp, as the CI check in README does) keeps it off too.
    PrivateTmp: realpathSync(ROOT).startsWith('/tmp/') ? 'no' : 'yes',
    PrivateDevices: 'yes',
    CapabilityBoundingSet: '',
    RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6',
    ProtectKernelTunables: 'yes',
    ProtectKernelModules: 'yes',
    ProtectKernelLogs: 'yes',
    KillSignal: 'SIGTERM',
  };
  for (const [key, value] of Object.entries(expected)) assert.deepEqual(d.get(key), [value], `${key}=${value}\n${unit}`);
  assert.equal(statSync(join(dir, 'state')).mode & 0o777, 0o700, 'the state directory exists (the sandbox needs it at start), 0700');
  if (isRoot) assert.match(result.stderr, /runs the daemon as root/, 'running as root is said plainly');
  verify(t, unit);
});

test('a state directory under /tmp keeps PrivateTmp off, since a private /tmp would hide it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-unit-home-'));
  const result = await cli(['daemon', 'unit'], { env: { CS_LLM_HOME: dir } });
  assert.equal(result.exitCode, 0, result.stderr);
  const d = directives(result.stdout);
  assert.deepEqual(d.get('PrivateTmp'), ['no']);
  assert.deepEqual(d.get('ReadWritePaths'), [realpathSync(join(dir, 'state'))]);
  verify(t, result.stdout);
});

test('--user NAME: the unit runs as that user, whose state directory is created for it; an unknown user is refused', async (t) => {
  const dir = homeOutsideTmp(t);
  const result = await cli(['daemon', 'unit', '--user', 'daemon'], { env: { CS_LLM_HOME: dir } });
  assert.equal(result.exitCode, 0, result.stderr);
  assert.deepEqual(directives(result.stdout).get('User'), ['daemon']);
  if (isRoot) {
    const uid = Number(execFileSync('id', ['-u', 'daemon'], { encoding: 'utf8' }).trim());
    assert.equal(statSync(join(dir, 'state')).uid, uid, 'owned by the service user, who must write it');
  }
  verify(t, result.stdout);

  const unknown = await cli(['daemon', 'unit', '--user', 'no-such-user-cs-llm'], { env: { CS_LLM_HOME: dir } });
  assert.equal(unknown.exitCode, 2);
  assert.match(unknown.stderr, /no user named no-such-user-cs-llm on this machine/);
  assert.match(unknown.stderr, /next: /);
});

test('run through sudo, the unit runs as the user who called sudo, not root', { skip: !isRoot && 'needs root' }, async (t) => {
  const dir = homeOutsideTmp(t);
  const result = await cli(['daemon', 'unit'], { env: { CS_LLM_HOME: dir, SUDO_USER: 'daemon' } });
  assert.equal(result.exitCode, 0, result.stderr);
  assert.deepEqual(directives(result.stdout).get('User'), ['daemon']);
  assert.doesNotMatch(result.stderr, /as root/);
});

test('a daemon bound to every interface may also open netlink sockets (it lists the addresses for its Host allowlist)', async (t) => {
  const dir = homeOutsideTmp(t);
  const result = await cli(['daemon', 'unit'], { env: { CS_LLM_HOME: dir, CS_LLM_DAEMON_HOST: '0.0.0.0' } });
  assert.equal(result.exitCode, 0, result.stderr);
  assert.deepEqual(directives(result.stdout).get('RestrictAddressFamilies'), ['AF_UNIX AF_INET AF_INET6 AF_NETLINK']);
  verify(t, result.stdout);
});

test("another user's state directory follows that user's home, as the service will see it", () => {
  const paths = unitPaths({ name: 'alice', uid: 1000, gid: 1000, home: '/home/alice' }, {});
  assert.equal(paths.stateDir, '/home/alice/.local/state/cs-llm');
  assert.equal(paths.configFile, '/home/alice/.config/cs-llm/config.json');
  assert.equal(
    unitPaths({ name: 'alice', uid: 1000, gid: 1000, home: '/home/alice' }, { CS_LLM_HOME: '/srv/cs' }).stateDir,
    '/srv/cs/state',
  );
});
