import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import type { UpResult } from '../../engine/up.js';
import { contextFor, intFlag } from '../context.js';
import { paint, type Output } from '../output.js';
import { createProgressReporter, upProgress } from '../progress.js';

interface UpFlags {
  model?: string;
  engine?: string;
  image?: string;
  gpus?: string;
  port?: number;
  context?: number;
  pullPolicy?: string;
  offline?: boolean;
  detach?: boolean;
  json?: boolean;
  engineEnv?: string[];
  /** false with --no-daemon */
  daemon?: boolean;
  /** cpu engine: llama.cpp threads (= the container's CPU quota) */
  threads?: number;
  placement?: string;
  dryRun?: boolean;
}

/** --engine-env KEY=VALUE (repeatable) -> {KEY: VALUE}. */
export function parseEngineEnv(pairs: string[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq) : '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      throw new UsageError(`--engine-env "${pair}" is not KEY=VALUE`, { next: 'Write it like --engine-env VLLM_LOGGING_LEVEL=DEBUG.' });
    }
    if (key === 'HF_TOKEN')
      throw new UsageError('pass HF_TOKEN through the environment, not on the command line', {
        next: 'export HF_TOKEN=... and run cs-llm up again.',
      });
    if (key === 'VLLM_API_KEY')
      throw new UsageError("the engine's API key is made by cs-llm up, not given on the command line", {
        next: 'Leave VLLM_API_KEY out; up gives each engine a random key (engine-api-key in the state directory) and the chat daemon the same one.',
      });
    env[key] = pair.slice(eq + 1);
  }
  return env;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** How to call it: through the daemon (with a session, so it remembers) when it runs, else the engine. */
export function curlExample(result: Pick<UpResult, 'baseUrl' | 'servedName' | 'daemon' | 'apiKeyFile'>): string {
  const body = JSON.stringify({ model: result.servedName, messages: [{ role: 'user', content: 'Hello!' }] });
  if (result.daemon) {
    return `curl -s ${result.daemon.url}/v1/chat/completions -H 'content-type: application/json' -H 'x-session-id: demo-1' -d '${body}'`;
  }
  // The engine itself wants its key (kept in a 0600 file; the command reads it, so it is never printed).
  return `curl -s ${result.baseUrl}/chat/completions -H "authorization: Bearer $(cat ${result.apiKeyFile})" -H 'content-type: application/json' -d '${body}'`;
}

function printResult(output: Output, result: UpResult): void {
  const where = result.mode === 'container' ? `container ${result.containerName}` : `local process ${result.pid}`;
  const how = result.reused ? 'already running with this configuration (reused)' : `ready in ${(result.readyInMs / 1000).toFixed(1)} s`;
  output.out(`${paint(output, 'green', 'engine serving')}: ${result.model} on the ${result.engine} engine (${where}), ${how}`);
  if (result.daemon) {
    output.out(
      `chat endpoint: ${result.daemon.url}/v1 (OpenAI-compatible, with session memory: send an X-Session-Id header; daemon pid ${result.daemon.pid}${result.daemon.reused ? ', reused' : ''})`,
    );
  }
  output.out(`engine endpoint: ${result.baseUrl} (loopback only; model name "${result.servedName}"; API key in ${result.apiKeyFile})`);
  output.out(`context: ${result.maxModelLen} tokens, ${result.maxNumSeqs} sequences, GPUs: ${result.gpuNames.join(', ') || 'none'}`);
  if (result.engines.length > 1) {
    output.out(`placement: ${result.placement}, ${result.engines.length} engines (the chat daemon routes each session to one of them):`);
    for (const e of result.engines) output.out(`  ${e.containerName ?? `pid ${e.pid}`}  GPU ${e.gpuNames.join(', GPU ')}  ${e.baseUrl}`);
  }
  output.out('try it:');
  output.out(`  ${curlExample(result)}`);
  output.out('status: cs-llm status    logs: cs-llm logs -f    stop: cs-llm down');
}

export function register(program: Command): void {
  program
    .command('up')
    .description(
      'Start the engine and the chat daemon in front of it: checks, a model that fits, image pull, container, readiness until it serves',
    )
    .option('--model <id>', 'catalog model id (default: the largest that fits the GPUs; config engine.model)')
    .option(
      '--engine <kind>',
      'auto (default: vllm with a usable NVIDIA GPU, else cpu), vllm, cpu (llama.cpp, GGUF) or sim (the simulator); config engine.kind',
    )
    .option(
      '--threads <n>',
      'cpu engine: llama.cpp threads, also its CPU quota (default: CPUs - 1; env CS_LLM_CPU_THREADS)',
      intFlag('--threads', { min: 1 }),
    )
    .option('--image <ref>', 'engine image (default: the pinned vLLM image, or the simulator image)')
    .option('--gpus <sel>', 'all, none, or GPU indexes like 0,1 (default: all for vllm, none for sim)')
    .option('--port <n>', 'engine port on 127.0.0.1 (default 8000; replicas take the next ones)', intFlag('--port', { min: 1, max: 65535 }))
    .option(
      '--placement <how>',
      'several GPUs: auto (default: one engine per GPU when the model fits one, else tensor parallel), replicas or tensor-parallel; config engine.placement',
    )
    .option(
      '--dry-run',
      'print the plan (engines, GPUs, model, context, sequences, placement, ports, estimated or measured) and start nothing',
    )
    .option('--context <n>', 'max context length (vLLM --max-model-len); default from the fit estimate', intFlag('--context', { min: 1 }))
    .option('--pull-policy <policy>', 'if-missing (default), always or never')
    .option(
      '--offline',
      'run with nothing downloaded: pull policy never, HF_HUB_OFFLINE=1 and TRANSFORMERS_OFFLINE=1 in the engine, and a check first that the image and model files are here (cs-llm bundle load brings them; config engine.offline)',
    )
    .option('--engine-env <KEY=VALUE>', 'extra environment for the engine (repeatable)', collect)
    .option('--no-daemon', 'start only the engine, not the chat daemon in front of it')
    .option('--detach', 'return once the engine serves, instead of ending in the live dashboard (a terminal only)')
    .option('--json', 'print the result as one JSON object; progress as NDJSON on stderr')
    .action(async (opts: UpFlags, command: Command) => {
      if (opts.engine !== undefined && !['vllm', 'sim', 'cpu', 'auto'].includes(opts.engine)) {
        throw new UsageError(`--engine must be auto, vllm, cpu or sim, got "${opts.engine}"`, {
          next: 'Use --engine vllm on a GPU host, --engine cpu for llama.cpp on the CPU, or --engine sim to try cs-llm without a model.',
        });
      }
      if (opts.pullPolicy !== undefined && !['if-missing', 'always', 'never'].includes(opts.pullPolicy)) {
        throw new UsageError(`--pull-policy must be if-missing, always or never, got "${opts.pullPolicy}"`);
      }
      if (opts.offline && opts.pullPolicy !== undefined && opts.pullPolicy !== 'never') {
        throw new UsageError(`--offline never pulls, so --pull-policy ${opts.pullPolicy} cannot apply`, {
          next: 'Drop --pull-policy (offline implies never), or drop --offline.',
        });
      }
      if (opts.placement !== undefined && !['auto', 'replicas', 'tensor-parallel'].includes(opts.placement)) {
        throw new UsageError(`--placement must be auto, replicas or tensor-parallel, got "${opts.placement}"`, {
          next: 'replicas: one engine per GPU (the model must fit one); tensor-parallel: one engine split over the GPUs.',
        });
      }
      const extraEnv = parseEngineEnv(opts.engineEnv);
      const { loaded, output } = await contextFor(command, {
        engine: {
          kind: opts.engine,
          model: opts.model,
          image: opts.image,
          gpus: opts.gpus,
          port: opts.port,
          context: opts.context,
          pullPolicy: opts.pullPolicy,
          offline: opts.offline,
          placement: opts.placement,
        },
      });
      // The engine's modules (Docker's client among them) load when the command runs, not for its help.
      const { planEngine, up } = await import('../../engine/up.js');
      if (opts.dryRun) {
        const { planLines, summarizePlan } = await import('../../engine/dry-run.js');
        const plan = await planEngine({
          engine: loaded.config.engine,
          userModels: loaded.config.models,
          paths: loaded.paths,
          ...(opts.threads !== undefined ? { env: { ...process.env, CS_LLM_CPU_THREADS: String(opts.threads) } } : {}),
        });
        const summary = summarizePlan(plan, {
          home: loaded.paths.home,
          image: loaded.config.engine.image,
          daemon: opts.daemon === false ? null : { host: loaded.config.daemon.host, port: loaded.config.daemon.port },
        });
        if (opts.json) output.json(summary);
        else for (const line of planLines(summary)) output.out(line);
        return;
      }
      const reporter = await createProgressReporter(output, upProgress, { json: Boolean(opts.json) });
      // Ctrl-C while starting: cancel, and the failed start removes what it created.
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let result: UpResult;
      try {
        result = await up({
          engine: loaded.config.engine,
          userModels: loaded.config.models,
          paths: loaded.paths,
          ...(opts.threads !== undefined ? { env: { ...process.env, CS_LLM_CPU_THREADS: String(opts.threads) } } : {}),
          extraEnv,
          signal: abort.signal,
          daemon: opts.daemon !== false,
          daemonListen: { host: loaded.config.daemon.host, port: loaded.config.daemon.port },
          onProgress: (event) => reporter.event(event),
        });
      } finally {
        reporter.close();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      if (opts.json) {
        output.json({ ...result, curl: curlExample(result) });
        return;
      }
      printResult(output, result);
      // In the foreground on a terminal, end in the live dashboard; the engine and daemon keep running after q.
      if (!opts.detach && result.daemon && output.interactive) {
        // Loaded here: Ink and React would cost every other command about a fifth of its start-up.
        const { runDashboard } = await import('../../dashboard/app.js');
        await runDashboard({
          url: result.daemon.url,
          intervalMs: 1000,
          apiKey: process.env.CS_LLM_API_KEY,
          interactive: true,
          color: output.color,
        });
        output.out('dashboard closed; the engine and the daemon are still running (cs-llm status; stop with cs-llm down)');
      }
    });
}
