import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/cli.js';

/**
 * The engine, doctor and gpu services import each other without a loop (type-only imports count: a loop of
 * types is still two modules that must change together). The whole-tree check lives with the architecture
 * tests; this one names the engine's own modules when it fails.
 */
const DIRS = ['src/engine', 'src/doctor', 'src/gpu'];

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)) {
    const target = resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'));
    if (DIRS.some((d) => target.startsWith(join(ROOT, d) + '/'))) out.push(target);
  }
  return out;
}

function findCycle(graph: Map<string, string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | null => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') return [...stack.slice(stack.indexOf(next)), next];
      if (!state.has(next)) {
        const found = visit(next);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(node, 'done');
    return null;
  };
  for (const node of graph.keys()) {
    if (!state.has(node)) {
      const found = visit(node);
      if (found) return found;
    }
  }
  return null;
}

test('the engine, doctor and gpu modules import each other without a loop, type imports included', () => {
  const graph = new Map<string, string[]>();
  for (const dir of DIRS) {
    for (const name of readdirSync(join(ROOT, dir)).filter((n) => n.endsWith('.ts'))) {
      const file = join(ROOT, dir, name);
      graph.set(file, importsOf(file));
    }
  }
  assert.ok(graph.size > 20, `read ${graph.size} modules`);
  const cycle = findCycle(graph);
  assert.equal(cycle && cycle.map((f) => relative(ROOT, f)).join(' -> '), null);
});
