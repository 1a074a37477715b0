import type { Command } from 'commander';

/**
 * What the top-level help shows of each command, in help order, and where its full definition lives (#21).
 * Building every command's options, subcommands and actions was a fifth of `cs-llm --help`'s own time; the
 * program now builds in full only the commands named on the command line and shows the others from these
 * lines. `term` and `description` must read exactly as commander prints the full command's: the test in
 * test/cli/lazy-registration.test.ts compares the two programs' output, so a change to a command's name,
 * arguments, description or whether it has options fails there until this table says the same.
 */
export interface CommandEntry {
  name: string;
  /** commander's subcommand term: name, `|alias`, ` [options]` when it has any, its arguments */
  term: string;
  aliases?: string[];
  description: string;
  load(): Promise<{ register(program: Command): void }>;
}

export const COMMANDS: readonly CommandEntry[] = [
  // commands: keep this list sorted by the order a newcomer meets them
  {
    name: 'config',
    term: 'config',
    description: 'Show the configuration in force and where it comes from',
    load: () => import('./commands/config.js'),
  },
  {
    name: 'doctor',
    term: 'doctor [options]',
    description: 'Check this host for what `cs-llm up` needs: Node, Docker, NVIDIA runtime, GPUs, disk, ports',
    load: () => import('./commands/doctor.js'),
  },
  {
    name: 'gpu',
    term: 'gpu [options]',
    description: 'List the GPUs: memory, use, temperature, power, driver and compute capability (nvidia-smi)',
    load: () => import('./commands/gpu.js'),
  },
  {
    name: 'models',
    term: 'models [options]',
    description:
      'The model catalog with what fits: verdict, --max-model-len and --max-num-seqs for these GPUs (or a card given with --vram)',
    load: () => import('./commands/models.js'),
  },
  {
    name: 'up',
    term: 'up [options]',
    description:
      'Start the engine and the chat daemon in front of it: checks, a model that fits, image pull, container, readiness until it serves',
    load: () => import('./commands/up.js'),
  },
  {
    name: 'status',
    term: 'status [options]',
    description: 'Show the engine: state, restarts (a crash loop), health, model, port, uptime, GPUs',
    load: () => import('./commands/status.js'),
  },
  {
    name: 'dashboard',
    term: 'dashboard [options]',
    description: "Live view of the daemon, the engine and the GPUs from the daemon's /metrics; q quits",
    load: () => import('./commands/dashboard.js'),
  },
  {
    name: 'logs',
    term: 'logs [options]',
    description: "Print the engine's logs (stdout and stderr as the engine wrote them)",
    load: () => import('./commands/logs.js'),
  },
  {
    name: 'down',
    term: 'down [options]',
    description: 'Stop the chat daemon and remove the engine (our containers, found by label, or the local engine process)',
    load: () => import('./commands/down.js'),
  },
  {
    name: 'chat',
    term: 'chat [options]',
    description: 'Chat with the model through the daemon (session memory included); /reset, /history, /exit',
    load: () => import('./commands/chat.js'),
  },
  {
    name: 'daemon',
    term: 'daemon',
    description: 'The chat daemon: OpenAI-compatible API with session memory in front of the engine',
    load: () => import('./commands/daemon.js'),
  },
  {
    name: 'sessions',
    term: 'sessions',
    description: 'Chat sessions stored by the daemon (reads the database directly)',
    load: () => import('./commands/sessions.js'),
  },
  {
    name: 'usage',
    term: 'usage [options]',
    description: "Tokens and cost per upstream, tenant, key, model or day, from the daemon's aggregates (reads the database)",
    load: () => import('./commands/usage.js'),
  },
  {
    name: 'bench',
    term: 'bench [options]',
    description:
      "Capacity test through the daemon: ramps the chat arrival rate until the p95 SLO breaks (not npm run bench, the developers' micro-benchmark)",
    load: () => import('./commands/bench.js'),
  },
  {
    name: 'keys',
    term: 'keys',
    description: 'API keys for the daemon: once one exists, every request needs Authorization: Bearer <key>',
    load: () => import('./commands/keys.js'),
  },
  {
    name: 'audit',
    term: 'audit',
    description: 'The audit log of API requests: who, when, what, how it went; never message contents',
    load: () => import('./commands/audit.js'),
  },
  {
    name: 'store',
    term: 'store',
    description: 'The session database: encryption keys, key rotation, scrubbing deleted text from the files',
    load: () => import('./commands/store.js'),
  },
  {
    name: 'bundle',
    term: 'bundle',
    description: 'Offline bundles for air-gapped hosts: the engine image, the model files and a manifest in one file',
    load: () => import('./commands/bundle.js'),
  },
  {
    name: 'sim',
    term: 'sim [flags...]',
    description: 'Run the vLLM-compatible engine simulator in the foreground until Ctrl-C (tests, demos, benchmarks, drills)',
    load: () => import('./commands/sim.js'),
  },
];
