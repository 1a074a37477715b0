/*
 * `cs-llm models pull` against real HTTP servers on 127.0.0.1, laid out like Hugging Face: the endpoint
 * answers /<repo>/resolve/main/<file> with a 302 to a second server (its CDN, another origin) that serves
 * the bytes with Range support. The bytes are the shipped tiny-memory model's, under a test catalog entry
 * given in the config, with its real sha256.
 */

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseCpuModel, SHIPPED_MODELS_DIR } from '../../src/engine/cpu-plan.js';
import { ConflictError, EnvironmentError, UsageError } from '../../src/core/errors.js';
import { processStamp } from '../../src/core/process-identity.js';
import { findModel, loadCatalog } from '../../src/models/catalog.js';
import { DEFAULT_HF_ENDPOINT, ggufDownloadUrl, resolveHfEndpoint } from '../../src/models/gguf-source.js';
import { pullGguf } from '../../src/models/pull.js';
import { runCli } from '../helpers/cli.js';

const BYTES = readFileSync(join(SHIPPED_MODELS_DIR, 'tiny-memory.gguf'));
const SHA = createHash('sha256').update(BYTES).digest('hex');
const REPO = 'cs-llm-test/Tiny-GGUF';
const FILE = 'test-tiny.gguf';
const tiny = findModel(loadCatalog(), 'tiny-memory');
const ENTRY = {
  ...tiny,
  id: 'test-tiny-gguf',
  servedName: 'test-tiny-gguf',
  notes: undefined,
  source: 'test: the bytes of models/tiny-memory.gguf',
  gguf: { file: FILE, hfRepo: REPO, sha256: SHA, sizeBytes: BYTES.length },
};
const MISSING = { ...ENTRY, id: 'test-not-on-hub', gguf: { ...ENTRY.gguf, file: 'not-there.gguf' } };

interface Seen {
  path: string;
  range: string | undefined;
  authorization: string | undefined;
  status: number;
  bytesSent: number;
}

type Mode = 'ok' | 'corrupt' | 'ignore-range' | 'cut-first' | 'close';

interface Hub {
  endpoint: string;
  seen: Seen[];
  setMode(mode: Mode): void;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function startHub(t: TestContext): Promise<Hub> {
  const seen: Seen[] = [];
  let mode: Mode = 'ok';
  let cdnRequests = 0;
  const record = (req: IncomingMessage, status: number, bytesSent = 0) =>
    seen.push({ path: req.url ?? '', range: req.headers.range, authorization: req.headers.authorization, status, bytesSent });

  const cdn = createServer((req: IncomingMessage, res: ServerResponse) => {
    cdnRequests++;
    const body = mode === 'corrupt' ? Buffer.from(BYTES.map((b, i) => (i === 1000 ? b ^ 0xff : b))) : BYTES;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && mode !== 'ignore-range') {
      const start = Number(range[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        record(req, 416);
        return;
      }
      const slice = body.subarray(start);
      res.writeHead(206, {
        'content-length': slice.length,
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
        'accept-ranges': 'bytes',
      });
      res.end(slice);
      record(req, 206, slice.length);
      return;
    }
    // 'close': the server closes the connection after the body, as HTTP/1.0 servers and some mirrors do.
    res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes', ...(mode === 'close' ? { connection: 'close' } : {}) });
    if (mode === 'cut-first' && cdnRequests === 1) {
      // The connection drops after part of the file, as a flaky network does.
      const half = body.subarray(0, Math.floor(body.length / 2));
      record(req, 200, half.length);
      res.write(half, () => setTimeout(() => res.socket?.destroy(), 100));
      return;
    }
    res.end(body);
    record(req, 200, body.length);
  });
  const cdnUrl = await listen(cdn);

  const hub = createServer((req, res) => {
    const m = /^\/([^/]+\/[^/]+)\/resolve\/main\/([^/?]+)$/.exec(req.url ?? '');
    if (m && m[1] === REPO && decodeURIComponent(m[2]!) === FILE) {
      res.writeHead(302, { location: `${cdnUrl}/blobs/${SHA}` }).end();
      record(req, 302);
      return;
    }
    // As Hugging Face answers a file that is not in the repository.
    res
      .writeHead(404, { 'content-type': 'text/plain', 'x-error-code': 'EntryNotFound', 'x-error-message': 'Entry not found' })
      .end('Entry not found');
    record(req, 404);
  });
  const endpoint = await listen(hub);
  t.after(async () => {
    cdn.closeAllConnections();
    hub.closeAllConnections();
    await Promise.all([new Promise((r) => cdn.close(r)), new Promise((r) => hub.close(r))]);
  });
  return { endpoint, seen, setMode: (m) => (mode = m) };
}

function home(config: Record<string, unknown> = {}): { env: Record<string, string>; dir: string } {
  const h = mkdtempSync(join(tmpdir(), 'cs-llm-pull-'));
  writeFileSync(join(h, 'config.json'), JSON.stringify({ models: [ENTRY, MISSING], ...config }));
  const dir = join(h, 'gguf');
  return { env: { CS_LLM_HOME: h, CS_LLM_GGUF_DIR: dir, HF_TOKEN: '', HF_ENDPOINT: '' }, dir };
}

const sha256Of = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

test(
  'models pull downloads the file through the hub redirect, checks size and sha256, and leaves no part file',
  { timeout: 120_000 },
  async (t) => {
    const hub = await startHub(t);
    const { env, dir } = home();
    const run = await runCli(['models', 'pull', 'test-tiny-gguf'], { env: { ...env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: 'hf_secret' } });
    assert.equal(run.exitCode, 0, String(run.stderr));
    const path = join(dir, FILE);
    assert.equal(sha256Of(path), SHA);
    assert.equal(existsSync(`${path}.part`), false);
    assert.equal(existsSync(`${path}.part.lock`), false);
    const stdout = String(run.stdout).trim().split('\n');
    assert.match(stdout[0]!, new RegExp(`^downloaded: ${path.replace(/[.]/g, '\\.')} \\(7\\.3 MiB; size and sha256 match the catalog\\)$`));
    assert.equal(stdout[1], 'next: cs-llm up --engine cpu --model test-tiny-gguf');
    // Without a terminal: the URL, then plain percent lines, 100% last.
    const stderr = String(run.stderr).trim().split('\n');
    assert.equal(stderr[0], `downloading ${hub.endpoint}/${REPO}/resolve/main/${FILE} to ${path}`);
    assert.ok(stderr.includes('downloaded 100% (7.3 MiB of 7.3 MiB)'), String(run.stderr));
    assert.ok(stderr.filter((l) => /^downloaded \d+% /.test(l)).length <= 11);
    // The hub here is plain http: the token went nowhere (over https it goes to the hub only: pull.guards.test.ts).
    assert.deepEqual(
      hub.seen.map((s) => [s.status, s.range, s.authorization]),
      [
        [302, undefined, undefined],
        [200, undefined, undefined],
      ],
    );
  },
);

test('models pull --json prints one JSON line as the result and NDJSON progress on stderr', { timeout: 120_000 }, async (t) => {
  const hub = await startHub(t);
  const { env, dir } = home({ engine: { hfEndpoint: hub.endpoint } });
  // The config's endpoint wins over HF_ENDPOINT.
  const run = await runCli(['models', 'pull', 'test-tiny-gguf', '--json'], { env: { ...env, HF_ENDPOINT: 'http://127.0.0.1:9' } });
  assert.equal(run.exitCode, 0, String(run.stderr));
  const lines = String(run.stdout).trim().split('\n');
  assert.equal(lines.length, 1);
  const result = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.deepEqual(result, {
    status: 'downloaded',
    id: 'test-tiny-gguf',
    path: join(dir, FILE),
    url: `${hub.endpoint}/${REPO}/resolve/main/${FILE}`,
    sizeBytes: BYTES.length,
    sha256: SHA,
    resumedFrom: 0,
    downloadedBytes: BYTES.length,
  });
  const progress = String(run.stderr)
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; event: { type: string; doneBytes?: number } });
  assert.ok(progress.every((p) => p.type === 'progress'));
  assert.equal(progress.at(-2)?.event.doneBytes, BYTES.length);
  assert.equal(progress.at(-1)?.event.type, 'verifying');
});

test('a download that broke off is continued from its part file with a Range request, not restarted', { timeout: 120_000 }, async (t) => {
  const hub = await startHub(t);
  hub.setMode('cut-first');
  const { env, dir } = home();
  const e = { ...env, HF_ENDPOINT: hub.endpoint };
  const path = join(dir, FILE);
  const first = await runCli(['models', 'pull', 'test-tiny-gguf'], { env: e });
  assert.equal(first.exitCode, 4, String(first.stderr));
  assert.match(String(first.stderr), /^error: download of test-tiny\.gguf broke off at .* of 7\.3 MiB, 7644288 bytes/m);
  assert.match(String(first.stderr), /^next: Run cs-llm models pull test-tiny-gguf again: it continues the part file /m);
  const partSize = statSync(`${path}.part`).size;
  assert.ok(partSize > 0 && partSize < BYTES.length, String(partSize));
  assert.equal(existsSync(path), false);

  const second = await runCli(['models', 'pull', 'test-tiny-gguf', '--json'], { env: e });
  assert.equal(second.exitCode, 0, String(second.stderr));
  const result = JSON.parse(String(second.stdout)) as { resumedFrom: number; downloadedBytes: number };
  assert.equal(result.resumedFrom, partSize);
  assert.equal(result.downloadedBytes, BYTES.length - partSize);
  const cdn = hub.seen.filter((s) => s.path.startsWith('/blobs/'));
  assert.deepEqual(
    cdn.map((s) => [s.status, s.range]),
    [
      [200, undefined],
      [206, `bytes=${partSize}-`],
    ],
  );
  assert.equal(cdn[1]!.bytesSent, BYTES.length - partSize, 'only the rest was sent');
  assert.equal(sha256Of(path), SHA);
  assert.equal(existsSync(`${path}.part`), false);
});

test('a server that ignores Range sends the whole file and the part starts over', { timeout: 120_000 }, async (t) => {
  const hub = await startHub(t);
  hub.setMode('ignore-range');
  const { dir } = home();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${FILE}.part`), BYTES.subarray(0, 1000));
  const result = await pullGguf({ model: ENTRY, dir, endpoint: hub.endpoint });
  assert.equal(result.status, 'downloaded');
  assert.equal(result.resumedFrom, 0);
  assert.equal(hub.seen.at(-1)!.range, 'bytes=1000-');
  assert.equal(hub.seen.at(-1)!.status, 200);
  assert.equal(sha256Of(join(dir, FILE)), SHA);
});

test(
  'a server that closes the connection after each body is read to the end (the undici crash of nodejs/undici#5360 does not apply)',
  { timeout: 120_000 },
  async (t) => {
    const hub = await startHub(t);
    hub.setMode('close');
    const { dir } = home();
    for (let i = 0; i < 5; i++) {
      const result = await pullGguf({ model: ENTRY, dir, endpoint: hub.endpoint });
      assert.equal(result.status, 'downloaded');
      assert.equal(sha256Of(join(dir, FILE)), SHA);
      rmSync(join(dir, FILE));
    }
  },
);

test('a corrupt body is rejected: the part file is removed and the error says so', { timeout: 120_000 }, async (t) => {
  const hub = await startHub(t);
  hub.setMode('corrupt');
  const { env, dir } = home();
  const run = await runCli(['models', 'pull', 'test-tiny-gguf'], { env: { ...env, HF_ENDPOINT: hub.endpoint } });
  assert.equal(run.exitCode, 4);
  assert.match(
    String(run.stderr),
    new RegExp(
      `^error: test-tiny\\.gguf has sha256 [0-9a-f]{64}, the catalog says ${SHA} \\(a damaged or different file\\); the part file .*test-tiny\\.gguf\\.part was removed$`,
      'm',
    ),
  );
  assert.match(String(run.stderr), /^next: Run cs-llm models pull test-tiny-gguf again to download from the start/m);
  assert.doesNotMatch(String(run.stderr), /\n\s+at /);
  assert.equal(existsSync(join(dir, FILE)), false);
  assert.equal(existsSync(join(dir, `${FILE}.part`)), false);
});

test(
  "a file that is already there and valid is not downloaded again; one that is not the catalog's is not overwritten",
  { timeout: 120_000 },
  async (t) => {
    const hub = await startHub(t);
    const { env, dir } = home();
    const e = { ...env, HF_ENDPOINT: hub.endpoint };
    assert.equal((await runCli(['models', 'pull', 'test-tiny-gguf'], { env: e })).exitCode, 0);
    const before = hub.seen.length;
    const again = await runCli(['models', 'pull', 'test-tiny-gguf'], { env: e });
    assert.equal(again.exitCode, 0, String(again.stderr));
    assert.match(
      String(again.stdout),
      /^already there: .*test-tiny\.gguf \(7\.3 MiB, size and sha256 match the catalog\); nothing downloaded$/m,
    );
    assert.equal(hub.seen.length, before, 'no request made');

    // The shipped tiny model counts as present where it ships; an entry with no source that is not here is refused.
    const shipped = await pullGguf({ model: tiny, dir: join(dir, 'elsewhere'), endpoint: hub.endpoint, alsoLookIn: [SHIPPED_MODELS_DIR] });
    assert.deepEqual([shipped.status, shipped.path, shipped.url], ['present', join(SHIPPED_MODELS_DIR, 'tiny-memory.gguf'), null]);
    await assert.rejects(
      pullGguf({ model: { ...tiny, gguf: { file: 'elsewhere.gguf', sha256: SHA } }, dir, endpoint: hub.endpoint }),
      (err: unknown) =>
        err instanceof UsageError && /not where to download it from/.test(err.message) && /gguf\.hfRepo/.test(err.next ?? ''),
    );

    writeFileSync(join(dir, FILE), 'GGUF but not the right bytes');
    const wrong = await runCli(['models', 'pull', 'test-tiny-gguf'], { env: e });
    assert.equal(wrong.exitCode, 8);
    assert.match(String(wrong.stderr), /is already there but is not the catalog's file \(28 bytes, expected 7644288\)/);
    assert.match(String(wrong.stderr), /^next: Move it away or remove it/m);
    assert.equal(readFileSync(join(dir, FILE), 'utf8'), 'GGUF but not the right bytes');
  },
);

test('a 404 from the hub is a clear error with the next step', { timeout: 120_000 }, async (t) => {
  const hub = await startHub(t);
  const { env, dir } = home();
  const run = await runCli(['models', 'pull', 'test-not-on-hub'], { env: { ...env, HF_ENDPOINT: hub.endpoint } });
  assert.equal(run.exitCode, 9);
  const stderr = String(run.stderr);
  assert.match(
    stderr,
    new RegExp(
      `^error: ${hub.endpoint}/${REPO}/resolve/main/not-there\\.gguf answered 404 Not Found \\(EntryNotFound: Entry not found\\): ${REPO} has no file not-there\\.gguf there$`,
      'm',
    ),
  );
  assert.match(
    stderr,
    new RegExp(`^next: Check the endpoint \\(${hub.endpoint}\\) serves Hugging Face paths .* put it into ${dir}/\\.$`, 'm'),
  );
  assert.match(stderr, new RegExp(`sha256 ${SHA}`));
  assert.equal(existsSync(join(dir, 'not-there.gguf.part')), false);
});

test('pull of a model that is not a GGUF, or not in the catalog, is refused with what to do', { timeout: 60_000 }, async () => {
  const { env } = home();
  const vllm = await runCli(['models', 'pull', 'qwen2.5-7b-instruct-awq'], { env });
  assert.equal(vllm.exitCode, 2);
  assert.match(String(vllm.stderr), /^error: model qwen2\.5-7b-instruct-awq is not a GGUF model for the cpu engine \(it is for: vllm\)$/m);
  assert.match(String(vllm.stderr), /^next: cs-llm models --engine cpu lists the GGUF models/m);
  const unknown = await runCli(['models', 'pull', 'no-such-model'], { env });
  assert.equal(unknown.exitCode, 9);
  assert.match(String(unknown.stderr), /no model "no-such-model" in the catalog/);
});

test('pull refuses when the disk is short, before any request', { timeout: 60_000 }, async (t) => {
  const hub = await startHub(t);
  const { dir } = home();
  await assert.rejects(
    pullGguf({ model: ENTRY, dir, endpoint: hub.endpoint, freeDisk: async (at) => ({ at, freeBytes: 10 * 1024 ** 2 }) }),
    (err: unknown) =>
      err instanceof EnvironmentError &&
      /^not enough free disk for test-tiny\.gguf: 7\.3 MiB, 7644288 bytes still to download/.test(err.message) &&
      /CS_LLM_GGUF_DIR/.test(err.next ?? ''),
  );
  assert.deepEqual(hub.seen, []);
});

test(
  'a second pull of the same file while one runs is refused; a lock left by a dead pull, or whose pid another program holds now, is taken over',
  { timeout: 60_000 },
  async (t) => {
    const hub = await startHub(t);
    const { dir } = home();
    mkdirSync(dir, { recursive: true });
    const lock = join(dir, `${FILE}.part.lock`);
    // A lock as a running pull writes it: its pid with that process's start time and boot id.
    writeFileSync(lock, JSON.stringify({ pid: process.pid, ...processStamp(process.pid) }));
    await assert.rejects(
      pullGguf({ model: ENTRY, dir, endpoint: hub.endpoint }),
      (err: unknown) => err instanceof ConflictError && new RegExp(`another cs-llm models pull \\(pid ${process.pid}\\)`).test(err.message),
    );
    // The pid of a live process that is no pull (after a crash and a reboot, a pid names anything): with
    // another start time, or as a bare pid (locks of earlier versions) of a process that is not cs-llm models pull.
    const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
    t.after(() => stranger.kill());
    const stamp = processStamp(stranger.pid!);
    for (const content of [
      JSON.stringify({ pid: stranger.pid, startTicks: `${Number(stamp?.startTicks ?? 0) + 1}`, bootId: stamp?.bootId }),
      String(stranger.pid),
    ]) {
      writeFileSync(lock, content);
      assert.equal((await pullGguf({ model: ENTRY, dir, endpoint: hub.endpoint })).status, 'downloaded', content);
      rmSync(join(dir, FILE));
    }
    // A pid that cannot be running (above Linux's pid_max).
    writeFileSync(lock, '99999999');
    assert.equal((await pullGguf({ model: ENTRY, dir, endpoint: hub.endpoint })).status, 'downloaded');
    assert.equal(existsSync(lock), false);
  },
);

test('a missing catalog GGUF makes up name the URL, the folder, the size, the sha256 and the pull command', () => {
  const catalog = loadCatalog();
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-gguf-missing-'));
  const model = findModel(catalog, 'qwen2.5-1.5b-instruct-q4_k_m');
  assert.throws(
    () => chooseCpuModel(catalog, model.id, { CS_LLM_GGUF_DIR: dir }),
    (err: unknown) =>
      err instanceof UsageError &&
      err.message.startsWith(`model file not found: ${join(dir, 'Qwen2.5-1.5B-Instruct-Q4_K_M.gguf')}`) &&
      err.next ===
        'Run cs-llm models pull qwen2.5-1.5b-instruct-q4_k_m (it downloads https://huggingface.co/bartowski/Qwen2.5-1.5B-Instruct-GGUF/resolve/main/Qwen2.5-1.5B-Instruct-Q4_K_M.gguf ' +
          `(940.4 MiB, 986048768 bytes, sha256 1adf0b11065d8ad2e8123ea110d1ec956dab4ab038eab665614adba04b6c3370) to ${join(dir, 'Qwen2.5-1.5B-Instruct-Q4_K_M.gguf')} and checks it), ` +
          `or on a machine without that access put the file from that URL in ${dir}/ yourself; or pass --model /path/to/model.gguf.`,
  );
  // A mirror from HF_ENDPOINT, or from the config (which wins), changes the URL.
  assert.throws(
    () => chooseCpuModel(catalog, model.id, { CS_LLM_GGUF_DIR: dir, HF_ENDPOINT: 'https://mirror.example/hf/' }),
    (err: unknown) => err instanceof UsageError && (err.next ?? '').includes('downloads https://mirror.example/hf/bartowski/'),
  );
  assert.throws(
    () => chooseCpuModel(catalog, model.id, { CS_LLM_GGUF_DIR: dir, HF_ENDPOINT: 'https://mirror.example' }, 'https://internal.example'),
    (err: unknown) => err instanceof UsageError && (err.next ?? '').includes('downloads https://internal.example/bartowski/'),
  );
});

test(
  'cs-llm up --engine cpu with a catalog GGUF not downloaded refuses before anything starts, naming the mirror from the config',
  { timeout: 120_000 },
  async () => {
    const { env, dir } = home({ engine: { hfEndpoint: 'http://127.0.0.1:9/hf-mirror' } });
    const run = await runCli(['up', '--engine', 'cpu', '--model', 'qwen2.5-0.5b-instruct-q4_k_m', '--detach', '--no-daemon'], { env });
    assert.equal(run.exitCode, 2, String(run.stderr));
    const stderr = String(run.stderr);
    assert.match(stderr, new RegExp(`^error: model file not found: ${dir}/Qwen2\\.5-0\\.5B-Instruct-Q4_K_M\\.gguf`, 'm'));
    assert.match(
      stderr,
      /^next: Run cs-llm models pull qwen2\.5-0\.5b-instruct-q4_k_m \(it downloads http:\/\/127\.0\.0\.1:9\/hf-mirror\/bartowski\/Qwen2\.5-0\.5B-Instruct-GGUF\/resolve\/main\/Qwen2\.5-0\.5B-Instruct-Q4_K_M\.gguf \(379\.4 MiB, 397808192 bytes, sha256 6eb923e7/m,
    );
  },
);

test('the endpoint: config, then HF_ENDPOINT, then huggingface.co; not an http(s) URL is refused; an entry url wins', () => {
  assert.deepEqual(resolveHfEndpoint(undefined, {}), { endpoint: DEFAULT_HF_ENDPOINT, from: 'default' });
  assert.deepEqual(resolveHfEndpoint(undefined, { HF_ENDPOINT: 'http://127.0.0.1:8081/' }), {
    endpoint: 'http://127.0.0.1:8081',
    from: 'HF_ENDPOINT',
  });
  assert.equal(resolveHfEndpoint('https://a.example', { HF_ENDPOINT: 'https://b.example' }).endpoint, 'https://a.example');
  assert.throws(
    () => resolveHfEndpoint(undefined, { HF_ENDPOINT: 'hf-mirror.com' }),
    (err: unknown) => err instanceof UsageError && /HF_ENDPOINT "hf-mirror\.com" is not an http\(s\) URL/.test(err.message),
  );
  assert.equal(ggufDownloadUrl({ file: 'a b.gguf', hfRepo: 'o/n' }, 'https://h'), 'https://h/o/n/resolve/main/a%20b.gguf');
  assert.equal(
    ggufDownloadUrl({ file: 'a.gguf', hfRepo: 'o/n', url: 'https://files.example/a.gguf' }, 'https://h'),
    'https://files.example/a.gguf',
  );
  assert.equal(ggufDownloadUrl({ file: 'a.gguf' }, 'https://h'), null);
});
