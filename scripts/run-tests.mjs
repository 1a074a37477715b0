#!/usr/bin/env node
// Runs every test/**/*.test.ts(x) with node's test runner, one process per file (src/ from dist/ when it is fresh, else through tsx), in two pools:
// files that drive dockerd run one at a time (they share the engine, its registry and, in CI, restart it),
// the others run alongside them, a few at a time. Each file's output is printed whole when it ends, and the
// run ends with the slowest files. Node 20's --test takes no globs, so the file list is built here.
//   npm test                          every file
//   npm test -- daemon store/keys     files whose path contains one of the words
//   CS_LLM_TEST_JOBS=1 npm test       one file at a time (default: one more than the CPUs, at most 4)
//   CS_LLM_TEST_REPORT=out.json       also write every file's duration and counts there
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === 'fixtures' || name === 'node_modules') continue;
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.ts') || name.endsWith('.test.tsx')) out.push(path);
  }
  return out;
}

// A file drives dockerd when its name says so or its code reaches the engine: the shared docker helpers,
// dockerode itself (a type-only import does not count), or the nvidia hook switch that restarts dockerd.
const DOCKER_CODE = /\brequireDocker\(|^import (?!type\b)[^;]*from 'dockerode'|\bsetNvidiaHookMode\(|integration\/(images|containers)\.js/m;
// Files that reach dockerd only through the CLI they start (no DOCKER_HOST of their own): listed by hand.
const DOCKER_BY_HAND = new Set([
  'test/cli/commands/doctor.test.ts', // `cs-llm doctor` pings dockerd and may probe a GPU container
]);
function usesDocker(file) {
  const path = file.split('\\').join('/');
  return /\.docker\.test\.tsx?$/.test(path) || DOCKER_BY_HAND.has(path) || DOCKER_CODE.test(readFileSync(file, 'utf8'));
}

function parseJobs(value) {
  // One more than the cores: most files spend much of their time waiting (servers starting, streams,
  // timeouts), so a third file on two cores keeps them busy; more than that only stretches every file.
  if (value === undefined || value === '') return Math.min(4, availableParallelism() + 1);
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`CS_LLM_TEST_JOBS must be a whole number of 1 or more, got "${value}"`);
    process.exit(2);
  }
  return n;
}

// A file that hangs would hold CI until its 90-minute limit: past this, its process group is killed.
const FILE_TIMEOUT_MS = Number(process.env.CS_LLM_TEST_FILE_TIMEOUT_MS ?? 15 * 60_000);

/** Every source file has its compiled file in dist/, written after the source was last changed. */
function distIsFresh() {
  const from = process.env.CS_LLM_TEST_ENTRY;
  if (from === 'src' || from === 'dist') return from === 'dist';
  const fresh = (dir) =>
    readdirSync(join('src', dir), { withFileTypes: true }).every((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return fresh(path);
      if (!/\.tsx?$/.test(entry.name)) return true;
      const built = statSync(join('dist', path.replace(/\.tsx?$/, '.js')), { throwIfNoEntry: false });
      return built !== undefined && built.mtimeMs >= statSync(join('src', path)).mtimeMs;
    });
  return existsSync('dist') && fresh('.');
}
// With dist/ up to date (CI builds before it tests), the test files' imports of src/ load the compiled
// modules and only the test files are compiled (scripts/test-loader): about 0.45 s less CPU per file than
// tsx, which resolves and compiles every module. Else tsx runs the sources, so a test never runs stale code.
const fromDist = distIsFresh();
const LOADER = fromDist ? './scripts/test-loader/register.mjs' : 'tsx';

const filters = process.argv.slice(2);
const files = findTests('test')
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const jobs = parseJobs(process.env.CS_LLM_TEST_JOBS);
const dockerFiles = files.filter(usesDocker);
const otherFiles = files.filter((f) => !dockerFiles.includes(f));

/** The counts the spec reporter prints at the end ("ℹ tests 12", "ℹ pass 11", ...). */
function counts(output) {
  const read = (name) => Number(new RegExp(`^ℹ ${name} (\\d+)$`, 'm').exec(output)?.[1] ?? 0);
  return {
    tests: read('tests'),
    pass: read('pass'),
    fail: read('fail'),
    skipped: read('skipped') + read('todo'),
    cancelled: read('cancelled'),
  };
}

function runFile(file) {
  const started = performance.now();
  return new Promise((resolve) => {
    // The file runs as the script itself, not under `--test`, which would start a second node (with tsx
    // loaded again) to run it: 0.4 s of CPU per file, about 65 s of a two-core CI run. node:test still runs
    // every test, prints the spec reporter's counts and sets a failing exit code.
    const child = spawn(process.execPath, ['--import', LOADER, '--test-reporter=spec', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so a timeout also ends what the file started
    });
    const chunks = [];
    child.stdout.on('data', (c) => chunks.push(c));
    child.stderr.on('data', (c) => chunks.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, FILE_TIMEOUT_MS);
    const kill = () => {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    };
    running.add(kill);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(kill);
      let output = Buffer.concat(chunks).toString('utf8');
      if (timedOut) output += `\n✖ ${file}: killed after ${FILE_TIMEOUT_MS / 1000} s (CS_LLM_TEST_FILE_TIMEOUT_MS)\n`;
      const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
      const c = counts(plain);
      const ok = code === 0 && !timedOut && c.fail === 0;
      resolve({ file, ok, code, signal, seconds: (performance.now() - started) / 1000, output, ...c });
    });
  });
}

/** The spec reporter's closing "failing tests" block (or the output's last lines), cut to fit a log's tail. */
function failureDetail(output) {
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const at = plain.lastIndexOf('✖ failing tests:');
  const lines = (at >= 0 ? plain.slice(at) : plain).trimEnd().split('\n');
  const shown = at >= 0 ? lines.slice(0, 60) : lines.slice(-30);
  return shown.map((l) => `    ${l}`).join('\n') + (at >= 0 && lines.length > 60 ? `\n    ... ${lines.length - 60} more lines` : '');
}

const running = new Set();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const kill of running) kill();
    process.exit(130);
  });
}

const results = [];
function report(r) {
  results.push(r);
  process.stdout.write(r.output.endsWith('\n') ? r.output : `${r.output}\n`);
  const mark = r.ok ? '✔' : '✖';
  const detail = `${r.tests} tests, ${r.fail} failed, ${r.skipped} skipped${r.ok || r.code === 0 ? '' : `, exit ${r.code ?? r.signal}`}`;
  console.log(`${mark} ${r.file}  ${r.seconds.toFixed(1)} s  (${detail})  [${results.length}/${files.length}]\n`);
}

async function pool(list, width) {
  const queue = [...list];
  const worker = async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) report(await runFile(file));
  };
  await Promise.all(Array.from({ length: Math.min(width, list.length) }, worker));
}

// The longest files start first, so that a pool does not end with one long file running alone: by their
// time in earlier runs (.test-times.json, kept by every run), else by how many processes and servers they
// start, which is where the time of a file goes (a rough guess, in about seconds on two cores).
const HISTORY = '.test-times.json';
const history = (() => {
  try {
    return JSON.parse(readFileSync(HISTORY, 'utf8'));
  } catch {
    return {};
  }
})();
const PROCESSES = /\b(runCli|cli|spawn|execa|launch)\(/g; // a child node process: about a second of CPU
const SERVERS = /\b(startHarness|startDaemon|startSimulator|startCpuEngine|startEngineWithDaemon|engineFor)\(/g;
const weight = (file) => {
  if (history[file] !== undefined) return history[file];
  const code = readFileSync(file, 'utf8');
  return 3 * (code.match(PROCESSES)?.length ?? 0) + (code.match(SERVERS)?.length ?? 0);
};
const longestFirst = (list) => [...list].sort((a, b) => weight(b) - weight(a));

const started = performance.now();
console.log(
  fromDist ? 'src/ from dist/ (up to date), test files compiled by esbuild' : 'src/ through tsx (dist/ is missing or older than src/)',
);
console.log(
  jobs === 1
    ? `${files.length} test files, one at a time\n`
    : `${files.length} test files: ${dockerFiles.length} that drive dockerd one at a time, beside them ${otherFiles.length} more ${jobs} at a time\n`,
);
if (jobs === 1) await pool(files, 1);
else await Promise.all([pool(longestFirst(dockerFiles), 1), pool(longestFirst(otherFiles), jobs)]);
const wall = (performance.now() - started) / 1000;

const total = (k) => results.reduce((sum, r) => sum + r[k], 0);
const failed = results.filter((r) => !r.ok);
console.log('slowest test files:');
for (const r of [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 10)) {
  console.log(`  ${r.seconds.toFixed(1).padStart(6)} s  ${r.file}${dockerFiles.includes(r.file) ? '  (dockerd)' : ''}`);
}
console.log(
  `\n${results.length} files, ${total('tests')} tests: ${total('pass')} passed, ${total('fail')} failed, ${total('skipped')} skipped` +
    `${total('cancelled') ? `, ${total('cancelled')} cancelled` : ''}; ${wall.toFixed(1)} s (${total('seconds').toFixed(1)} s of files)`,
);
if (failed.length > 0) {
  console.log(`\nfailed files:\n${failed.map((r) => `  ${r.file}`).join('\n')}`);
  // Again at the very end, what failed and why: a CI log is often read from its tail only.
  for (const r of failed) console.log(`\n✖ ${r.file}\n${failureDetail(r.output)}`);
}
for (const r of results) history[r.file] = Math.round(r.seconds * 10) / 10;
try {
  writeFileSync(HISTORY, `${JSON.stringify(history, null, 1)}\n`);
} catch {
  // a read-only checkout: the next run orders by the fallback
}
if (process.env.CS_LLM_TEST_REPORT) {
  const files = results.map(({ output: _output, ...r }) => r).sort((a, b) => b.seconds - a.seconds);
  writeFileSync(process.env.CS_LLM_TEST_REPORT, `${JSON.stringify({ wallSeconds: wall, jobs, files }, null, 2)}\n`);
}
process.exit(failed.length > 0 ? 1 : 0);
