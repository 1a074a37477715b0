/*
 * What `cs-llm models pull` must not do (#22.1), against real servers on 127.0.0.1: a "foreign" origin is
 * another loopback port; https uses a self-signed certificate made here with openssl at run time, trusted
 * through pullGguf's `ca` option or, for the CLI process, NODE_EXTRA_CA_CERTS. The bytes are the shipped
 * tiny-memory model's, under a test catalog entry with its real sha256.
 */

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHIPPED_MODELS_DIR } from '../../src/engine/cpu-plan.js';
import { ConflictError, EnvironmentError } from '../../src/core/errors.js';
import { findModel, loadCatalog } from '../../src/models/catalog.js';
import { pullGguf, type PullGgufOptions, type PullGgufResult } from '../../src/models/pull.js';
import { runCli } from '../helpers/cli.js';

const BYTES = readFileSync(join(SHIPPED_MODELS_DIR, 'tiny-memory.gguf'));
const SHA = createHash('sha256').update(BYTES).digest('hex');
const REPO = 'cs-llm-test/Tiny-GGUF';
const FILE = 'test-tiny.gguf';
const TOKEN = 'hf_secret';
const tiny = findModel(loadCatalog(), 'tiny-memory');
const ENTRY = {
  ...tiny,
  id: 'test-tiny-gguf',
  servedName: 'test-tiny-gguf',
  notes: undefined,
  source: 'test: the bytes of models/tiny-memory.gguf',
  weightsBytes: BYTES.length,
  gguf: { file: FILE, hfRepo: REPO, sha256: SHA, sizeBytes: BYTES.length },
};
/** The same entry without sizeBytes: only its weightsBytes says how large the file should be. */
const SIZELESS = { ...ENTRY, gguf: { file: FILE, hfRepo: REPO, sha256: SHA } };

interface Tls {
  key: Buffer;
  cert: Buffer;
  certPath: string;
}

/** A self-signed certificate for 127.0.0.1, made now; null (the test skips) where openssl is missing. */
function makeCert(t: TestContext): Tls | null {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-pull-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [keyPath, certPath] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        keyPath,
        '-out',
        certPath,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
      ].concat(['-addext', 'subjectAltName=IP:127.0.0.1']),
      { stdio: 'ignore' },
    );
  } catch (err) {
    t.skip(`openssl could not make a certificate: ${(err as Error).message}`);
    return null;
  }
  return { key: readFileSync(keyPath), cert: readFileSync(certPath), certPath };
}

interface Seen {
  path: string;
  authorization: string | undefined;
}

interface Origin {
  url: string;
  seen: Seen[];
}

/** A server on 127.0.0.1 (https when tls is given) that records each request's path and Authorization. */
async function serve(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void, tls?: Tls): Promise<Origin> {
  const seen: Seen[] = [];
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
    handler(req, res);
  };
  const server: Server = tls ? createHttpsServer({ key: tls.key, cert: tls.cert }, onRequest) : createHttpServer(onRequest);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { url: `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

/** Storage that serves the file's bytes (with its length) at any path. */
const fileBytes = (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-length': BYTES.length });
  res.end(BYTES);
};

/** A hub that redirects the entry's path to `to` (Hugging Face sends its CDN's URL). */
const redirectTo = (to: () => string) => (req: IncomingMessage, res: ServerResponse) => {
  if (req.url === `/${REPO}/resolve/main/${FILE}`) res.writeHead(302, { location: `${to()}/blobs/${SHA}` }).end();
  else res.writeHead(404).end();
};

function downloadDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-pull-guards-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'gguf');
}

const pull = (options: Partial<PullGgufOptions> & Pick<PullGgufOptions, 'dir' | 'endpoint'>): Promise<PullGgufResult> =>
  pullGguf({ model: ENTRY, idleTimeoutMs: 20_000, ...options });

test(
  'the CLI sends HF_TOKEN to the https endpoint it is configured with, and not to the storage (another origin) it redirects to',
  { timeout: 120_000 },
  async (t) => {
    const tls = makeCert(t);
    if (!tls) return;
    const cdn = await serve(t, fileBytes, tls);
    const hub = await serve(
      t,
      redirectTo(() => cdn.url),
      tls,
    );
    const home = mkdtempSync(join(tmpdir(), 'cs-llm-pull-guards-home-'));
    t.after(() => rmSync(home, { recursive: true, force: true }));
    writeFileSync(join(home, 'config.json'), JSON.stringify({ models: [ENTRY] }));
    const run = await runCli(['models', 'pull', 'test-tiny-gguf', '--json'], {
      env: {
        CS_LLM_HOME: home,
        CS_LLM_GGUF_DIR: join(home, 'gguf'),
        HF_ENDPOINT: hub.url,
        HF_TOKEN: TOKEN,
        NODE_EXTRA_CA_CERTS: tls.certPath,
      },
    });
    assert.equal(run.exitCode, 0, String(run.stderr));
    assert.equal((JSON.parse(String(run.stdout)) as { status: string }).status, 'downloaded');
    assert.deepEqual(hub.seen, [{ path: `/${REPO}/resolve/main/${FILE}`, authorization: `Bearer ${TOKEN}` }]);
    assert.deepEqual(cdn.seen, [{ path: `/blobs/${SHA}`, authorization: undefined }]);
  },
);

test('over plain http the token goes nowhere, not even to the configured endpoint', { timeout: 60_000 }, async (t) => {
  const cdn = await serve(t, fileBytes);
  const hub = await serve(
    t,
    redirectTo(() => cdn.url),
  );
  const result = await pull({ dir: downloadDir(t), endpoint: hub.url, token: TOKEN });
  assert.equal(result.status, 'downloaded');
  assert.deepEqual(
    [...hub.seen, ...cdn.seen].map((s) => s.authorization),
    [undefined, undefined],
  );
});

test("an entry's url on another origin than the endpoint gets no token, even over https", { timeout: 60_000 }, async (t) => {
  const tls = makeCert(t);
  if (!tls) return;
  const hub = await serve(t, fileBytes, tls);
  const elsewhere = await serve(t, fileBytes, tls);
  const model = { ...ENTRY, gguf: { ...ENTRY.gguf, url: `${elsewhere.url}/files/${FILE}` } };
  const result = await pull({ model, dir: downloadDir(t), endpoint: hub.url, token: TOKEN, ca: tls.cert });
  assert.equal(result.status, 'downloaded');
  assert.deepEqual(elsewhere.seen, [{ path: `/files/${FILE}`, authorization: undefined }]);
  assert.deepEqual(hub.seen, []);
});

test('a redirect from https to plain http is refused before anything is requested over http', { timeout: 60_000 }, async (t) => {
  const tls = makeCert(t);
  if (!tls) return;
  const plain = await serve(t, fileBytes);
  const hub = await serve(
    t,
    redirectTo(() => plain.url),
    tls,
  );
  const dir = downloadDir(t);
  await assert.rejects(
    pull({ dir, endpoint: hub.url, token: TOKEN, ca: tls.cert }),
    (err: unknown) =>
      err instanceof EnvironmentError &&
      err.message.includes(`refused a redirect from https to plain http (${plain.url}/blobs/${SHA})`) &&
      /mirror/.test(err.next ?? ''),
  );
  assert.deepEqual(plain.seen, []);
  assert.equal(existsSync(join(dir, `${FILE}.part`)), false);
});

test(
  'without sizeBytes a download is capped at weightsBytes plus a margin: an endless body is cut off there and its part removed',
  { timeout: 120_000 },
  async (t) => {
    // The file, then zeros for as long as the client reads: no Content-Length, chunked.
    const endless = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const zeros = Buffer.alloc(1024 * 1024);
      res.write(BYTES);
      const more = () => {
        while (!res.destroyed && res.write(zeros));
        if (!res.destroyed) res.once('drain', more);
      };
      more();
    });
    const dir = downloadDir(t);
    const cap = BYTES.length + 64 * 1024 ** 2;
    await assert.rejects(
      pull({ model: SIZELESS, dir, endpoint: endless.url, signal: AbortSignal.timeout(90_000) }),
      (err: unknown) =>
        err instanceof EnvironmentError &&
        err.message.includes(`sent more than the ${cap} bytes allowed for ${FILE}`) &&
        err.message.includes(`weightsBytes ${BYTES.length} plus`),
    );
    assert.deepEqual(readdirSync(dir), []);
  },
);

test(
  'without sizeBytes a server that declares more than the cap is refused unread, and the free disk is checked for the cap before any request',
  { timeout: 60_000 },
  async (t) => {
    const cap = BYTES.length + 64 * 1024 ** 2;
    const huge = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-length': 50 * 1024 ** 3 });
      res.write(BYTES.subarray(0, 1024));
    });
    const dir = downloadDir(t);
    await assert.rejects(
      pull({ model: SIZELESS, dir, endpoint: huge.url }),
      (err: unknown) => err instanceof EnvironmentError && err.message.includes(`is ${50 * 1024 ** 3} bytes, more than the ${cap} allowed`),
    );
    assert.equal(existsSync(join(dir, `${FILE}.part`)), false);

    const before = huge.seen.length;
    await assert.rejects(
      pull({ model: SIZELESS, dir, endpoint: huge.url, freeDisk: async (at) => ({ at, freeBytes: 32 * 1024 ** 2 }) }),
      (err: unknown) => err instanceof EnvironmentError && /^not enough free disk for test-tiny\.gguf/.test(err.message),
    );
    assert.equal(huge.seen.length, before, 'no request made');

    // Within the cap and with no length given, the file comes down and is checked as usual.
    const chunked = await serve(t, (_req, res) => {
      res.writeHead(200);
      res.end(BYTES);
    });
    const result = await pull({ model: SIZELESS, dir, endpoint: chunked.url });
    assert.deepEqual([result.status, result.sizeBytes, result.sha256], ['downloaded', BYTES.length, SHA]);
  },
);

test('a symlink planted at the part path is not followed: the file it points to stays as it was', { timeout: 60_000 }, async (t) => {
  const storage = await serve(t, fileBytes);
  const dir = downloadDir(t);
  mkdirSync(dir, { recursive: true });
  const victim = join(dir, '..', 'precious.txt');
  writeFileSync(victim, 'not to be overwritten');
  symlinkSync(victim, join(dir, `${FILE}.part`));
  await assert.rejects(
    pull({ dir, endpoint: storage.url }),
    (err: unknown) => err instanceof ConflictError && err.message.includes('is not a regular file') && /Remove it/.test(err.next ?? ''),
  );
  assert.equal(readFileSync(victim, 'utf8'), 'not to be overwritten');
  assert.equal(existsSync(join(dir, FILE)), false);
  assert.deepEqual(storage.seen, []);
});

test(
  'the lock is taken atomically: of four pulls started together over a stale lock, one downloads and the others are refused',
  { timeout: 120_000 },
  async (t) => {
    // Slow storage: the winner holds the lock for a while.
    const storage = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-length': BYTES.length });
      res.write(BYTES.subarray(0, 1024));
      setTimeout(() => res.end(BYTES.subarray(1024)), 500);
    });
    const dir = downloadDir(t);
    mkdirSync(dir, { recursive: true });
    // Left by a pull that died: a pid that cannot be running (above Linux's pid_max).
    writeFileSync(join(dir, `${FILE}.part.lock`), '99999999');
    const results = await Promise.allSettled([1, 2, 3, 4].map(() => pull({ dir, endpoint: storage.url })));
    const downloaded = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter(
      (r): r is PromiseRejectedResult =>
        r.status === 'rejected' && r.reason instanceof ConflictError && /another cs-llm models pull/.test(r.reason.message),
    );
    assert.equal(downloaded.length, 1, JSON.stringify(results.map((r) => (r.status === 'rejected' ? String(r.reason) : r.value.status))));
    assert.equal(refused.length, 3);
    assert.equal(storage.seen.length, 1);
    assert.deepEqual(readdirSync(dir), [FILE]);
  },
);
