import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { loadConfig } from '../../src/core/config.js';
import { startDaemon } from '../../src/daemon/server.js';
import { parsePrometheusText } from '../../src/metrics/prom-text.js';
import { startSimulator } from '../../src/sim/server.js';
import { ROOT } from '../helpers/cli.js';
import { requirePromtool } from './promtool.js';

const OPS = join(ROOT, 'ops');
const ALERTS = join(OPS, 'prometheus', 'alerts.yml');
const GRAFANA = join(OPS, 'grafana', 'cs-llm-dashboard.json');

interface GrafanaPanel {
  title: string;
  targets: Array<{ expr: string }>;
}

function grafanaPanels(): GrafanaPanel[] {
  return (JSON.parse(readFileSync(GRAFANA, 'utf8')) as { panels: GrafanaPanel[] }).panels;
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-ops-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The metric families a running daemon (with a simulator and a fake GPU) exposes. */
async function exposedFamilies(t: TestContext): Promise<Set<string>> {
  const home = tempDir(t);
  const sim = await startSimulator({ port: 0, accessLog: false });
  t.after(() => sim.close());
  const { config, paths } = loadConfig({ env: { CS_LLM_HOME: home }, flags: { daemon: { upstream: sim.url } } });
  const daemon = await startDaemon({
    config,
    paths,
    port: 0,
    metrics: { gpu: { nvidiaSmi: join(ROOT, 'test', 'fixtures', 'nvidia-smi', 'loop', 'nvidia-smi'), intervalMs: 100 } },
  });
  t.after(() => daemon.close('test over'));
  const text = await (await fetch(`${daemon.url}/metrics`)).text();
  return new Set(parsePrometheusText(text).types.keys());
}

/** cs_llm_* families named in a text, with histogram sample suffixes taken off. */
function familiesNamed(text: string): Set<string> {
  return new Set([...text.matchAll(/\bcs_llm_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, '')));
}

test('promtool accepts the alert rules, and their unit tests pass', async (t) => {
  const promtool = await requirePromtool(t);
  if (!promtool) return;
  const checked = await execa(promtool, ['check', 'rules', ALERTS], { reject: false });
  assert.equal(checked.exitCode, 0, checked.stdout + checked.stderr);
  assert.match(checked.stdout, /SUCCESS: 5 rules found/);
  const tested = await execa(promtool, ['test', 'rules', join(OPS, 'prometheus', 'alerts.test.yml')], { reject: false });
  assert.equal(tested.exitCode, 0, tested.stdout + tested.stderr);
});

test('promtool accepts the scrape config once its key file exists', async (t) => {
  const promtool = await requirePromtool(t);
  if (!promtool) return;
  const dir = tempDir(t);
  const keyFile = join(dir, 'cs-llm.key');
  writeFileSync(keyFile, 'csk_example\n', { mode: 0o600 });
  const config = readFileSync(join(OPS, 'prometheus', 'prometheus.yml'), 'utf8').replace('/etc/prometheus/cs-llm.key', keyFile);
  assert.notEqual(config, readFileSync(join(OPS, 'prometheus', 'prometheus.yml'), 'utf8'), 'the shipped config names a key file');
  writeFileSync(join(dir, 'prometheus.yml'), config);
  copyFileSync(ALERTS, join(dir, 'alerts.yml'));
  const checked = await execa(promtool, ['check', 'config', join(dir, 'prometheus.yml')], { reject: false });
  assert.equal(checked.exitCode, 0, checked.stdout + checked.stderr);
});

test('every Grafana panel query is valid PromQL', async (t) => {
  const promtool = await requirePromtool(t);
  if (!promtool) return;
  // promtool checks PromQL inside rule files: one recording rule per panel query, Grafana variables filled in.
  const rules = grafanaPanels().flatMap((panel, p) =>
    panel.targets.map((target, i) => {
      const expr = target.expr.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*');
      return `      - record: grafana:panel${p}_${i}\n        expr: ${JSON.stringify(expr)}`;
    }),
  );
  const file = join(tempDir(t), 'panels.yml');
  writeFileSync(file, `groups:\n  - name: grafana-panels\n    rules:\n${rules.join('\n')}\n`);
  const checked = await execa(promtool, ['check', 'rules', file], { reject: false });
  assert.equal(checked.exitCode, 0, checked.stdout + checked.stderr);
});

test('the Grafana dashboard and the alerts name only metrics the daemon exposes, and show what the terminal dashboard shows', async (t) => {
  const exposed = await exposedFamilies(t);
  const panels = grafanaPanels();
  const inGrafana = familiesNamed(panels.flatMap((p) => p.targets.map((x) => x.expr)).join('\n'));
  const inAlerts = familiesNamed(readFileSync(ALERTS, 'utf8'));
  for (const name of [...inGrafana, ...inAlerts]) assert.ok(exposed.has(name), `${name} is not in the daemon's /metrics`);
  const titles = panels.map((p) => p.title).join(' | ');
  for (const figure of [
    /Requests per second/,
    /Latency/,
    /Time to first token/,
    /Tokens per second/,
    /In flight and queued/,
    /Errors and 429s/,
    /Active sessions/,
    /VRAM/,
    /GPU utilisation/,
    /GPU temperature/,
    /KV-cache/,
    /Engine/,
    /Model/,
    /Uptime/,
  ]) {
    assert.match(titles, figure);
  }
});
