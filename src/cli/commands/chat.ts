import type { Command } from 'commander';
import { EnvironmentError, UsageError } from '../../core/errors.js';
import { contextFor } from '../context.js';
import { paint } from '../output.js';

interface ChatFlags {
  session?: string;
  url?: string;
  apiKey?: string;
  model?: string;
  profile?: string;
}

/**
 * A terminal chat through the daemon with the `openai` client: each line is a turn of one session, replies
 * stream in as they are generated. Lines come from stdin, so it also works with piped input.
 */
export function register(program: Command): void {
  program
    .command('chat')
    .description('Chat with the model through the daemon (session memory included); /reset, /history, /exit')
    .option('--session <id>', 'session id to use or continue (default: a new one)')
    .option('--url <url>', 'daemon URL (default: the running daemon, else daemon.host:daemon.port)')
    .option('--api-key <key>', 'daemon API key (default: $CS_LLM_API_KEY)')
    .option('--model <name>', 'model name (default: the first one the daemon lists)')
    .option('--profile <name>', 'profile (system prompt, window, TTL) to use')
    .action(async (opts: ChatFlags, command: Command) => {
      // Loaded here, not at the top: node:crypto, node:readline and node:child_process (the daemon's state
      // file) cost every other command's start, `--help` included (#21).
      const [{ randomBytes }, { createInterface }, { readDaemonState }, { SESSION_ID_PATTERN }] = await Promise.all([
        import('node:crypto'),
        import('node:readline'),
        import('../../daemon/lifecycle.js'),
        import('../../daemon/security.js'),
      ]);
      const { loaded, output } = await contextFor(command);
      const { config, paths } = loaded;
      const sessionId = opts.session ?? `chat-${randomBytes(6).toString('hex')}`;
      if (!SESSION_ID_PATTERN.test(sessionId)) throw new UsageError(`--session "${sessionId}" must be 1-128 letters, digits, or . _ : -`);
      const base = (opts.url ?? readDaemonState(paths)?.url ?? `http://${config.daemon.host}:${config.daemon.port}`)
        .replace(/\/+$/, '')
        .replace(/\/v1$/, '');
      const apiKey = opts.apiKey ?? process.env.CS_LLM_API_KEY ?? 'none';
      const headers: Record<string, string> = { 'X-Session-Id': sessionId, ...(opts.profile ? { 'X-Profile': opts.profile } : {}) };
      const { default: OpenAI } = await import('openai');
      const client = new OpenAI({
        baseURL: `${base}/v1`,
        apiKey,
        maxRetries: 1,
        timeout: config.daemon.upstreamTimeoutMs + 5000,
        defaultHeaders: headers,
      });
      const auth = { authorization: `Bearer ${apiKey}` };

      let model = opts.model;
      if (!model) {
        try {
          model = (await client.models.list()).data[0]?.id;
        } catch (err) {
          throw new EnvironmentError(`the daemon at ${base} did not answer: ${(err as Error).message}`, {
            next: 'Start it with cs-llm daemon start (or cs-llm up), pass --url, or --api-key if it needs one.',
          });
        }
        if (!model) throw new EnvironmentError(`the daemon at ${base} lists no model`, { next: 'Check the engine with cs-llm status.' });
      }

      const interactive = Boolean(process.stdin.isTTY);
      output.err(`session ${sessionId} with ${model} at ${base}; /reset clears it, /history shows it, /exit leaves`);
      const rl = createInterface({ input: process.stdin, terminal: interactive });
      const prompt = () => {
        if (interactive) output.write(paint(output, 'cyan', 'you> '));
      };
      prompt();
      for await (const raw of rl) {
        const line = raw.trim();
        if (line === '') {
          prompt();
          continue;
        }
        if (line === '/exit' || line === '/quit') break;
        if (line === '/reset') {
          const res = await fetch(`${base}/v1/sessions/${encodeURIComponent(sessionId)}`, { method: 'DELETE', headers: auth });
          await res.arrayBuffer();
          output.out(res.ok || res.status === 404 ? '(session cleared)' : `(could not clear the session: HTTP ${res.status})`);
        } else if (line === '/history') {
          const res = await fetch(`${base}/v1/sessions/${encodeURIComponent(sessionId)}`, { headers: auth });
          if (res.status === 404) output.out('(no history yet)');
          else if (!res.ok) output.out(`(could not read the history: HTTP ${res.status})`);
          else {
            const session = (await res.json()) as { messages: Array<{ role: string; content: unknown }> };
            for (const m of session.messages)
              output.out(`${m.role}: ${typeof m.content === 'string' ? m.content : JSON.stringify(m.content)}`);
          }
        } else if (line.startsWith('/')) {
          output.out('(commands: /reset, /history, /exit)');
        } else {
          try {
            const stream = await client.chat.completions.create({ model, stream: true, messages: [{ role: 'user', content: line }] });
            if (interactive) output.write(paint(output, 'green', 'assistant> '));
            // The model's words, made safe for the terminal by output.write.
            for await (const chunk of stream) output.write(chunk.choices[0]?.delta.content ?? '');
            output.write('\n');
          } catch (err) {
            output.err(`error: ${(err as Error).message}`);
            process.exitCode = 1;
          }
        }
        prompt();
      }
      rl.close();
    });
}
