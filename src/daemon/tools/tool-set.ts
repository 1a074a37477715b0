import type { Config, Profile, ToolConfig } from '../../core/config.js';
import { ConfigError } from '../../core/errors.js';
import { CircuitBreaker } from './breaker.js';
import { ABORTED, errorResult, runHttpTool, type ToolOutcome, type ToolResult } from './http-tool.js';
import { compileArgumentsSchema, SchemaError, type ArgumentsValidator } from './json-schema.js';
import { expandEnv, ToolArgumentError, toolRequest, urlTemplateProblems, type ToolRequest } from './tool-request.js';

/** The metric label of a call naming no declared tool (not a valid tool name, so it cannot collide). */
export const UNKNOWN_TOOL_LABEL = '(unknown)';

/** A tool call as the model made it (OpenAI's tool_calls entry). */
export interface ToolCallRequest {
  id: string;
  name: string;
  /** The raw arguments string (JSON, as the model wrote it). */
  arguments: string;
}

/** What a turn lets a call do. */
export interface RunOptions {
  /** The turn's profile's tools: a call naming any other tool gets "there is no tool named X". */
  allowed: readonly string[];
  /** Aborted when the turn's client goes away: a call not yet started is skipped, a running one cut. */
  signal?: AbortSignal;
}

export interface ToolSetOptions {
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  /** Called once per call with its outcome (the cs_llm_tool_calls_total counter). */
  onCall?: (tool: string, outcome: ToolOutcome) => void;
}

interface Entry {
  config: ToolConfig;
  /** The parameters schema, compiled once at start. */
  validate: ArgumentsValidator;
  breaker: CircuitBreaker;
  definition: { type: 'function'; function: { name: string; description: string; parameters: Record<string, unknown> } };
}

/** The configured server-side tools: their definitions for the model, and running calls with breakers. */
export class ToolSet {
  private readonly tools = new Map<string, Entry>();
  private readonly env: NodeJS.ProcessEnv;
  private readonly onCall: ((tool: string, outcome: ToolOutcome) => void) | undefined;

  constructor(config: Config, options: ToolSetOptions = {}) {
    this.env = options.env ?? process.env;
    this.onCall = options.onCall;
    const d = config.daemon;
    for (const tool of d.tools) {
      if (this.tools.has(tool.name))
        throw new ConfigError(`daemon.tools: the tool "${tool.name}" is declared twice`, { next: 'Give each tool its own name.' });
      const urlProblems = urlTemplateProblems(tool);
      if (urlProblems.length > 0) {
        throw new ConfigError(`daemon.tools: "${tool.name}" has an unusable URL: ${urlProblems.join('; ')}`, {
          next: 'Put {placeholders} only in the path or the query, each naming a property of parameters.properties.',
        });
      }
      // A header's ${VAR} that is not set would fail every call of the tool: the operator hears it at start,
      // not from the first customer's turn.
      for (const [header, value] of Object.entries(tool.http.headers)) {
        try {
          expandEnv(value, this.env);
        } catch (err) {
          throw new ConfigError(`daemon.tools: "${tool.name}" header ${header}: ${(err as Error).message} in the daemon's environment`, {
            next: "Set it where the daemon starts (the shell, or the systemd unit's EnvironmentFile), or remove the header.",
          });
        }
      }
      let validate: ArgumentsValidator;
      try {
        validate = compileArgumentsSchema(tool.parameters);
      } catch (err) {
        if (!(err instanceof SchemaError)) throw err;
        throw new ConfigError(`daemon.tools: "${tool.name}" has a parameters schema the daemon cannot check: ${err.problems.join('; ')}`, {
          next: 'Fix the schema (JSON Schema 2020-12, the keywords and formats in docs/routing-and-tools.md); the daemon refuses what it could not enforce.',
        });
      }
      this.tools.set(tool.name, {
        config: tool,
        validate,
        breaker: new CircuitBreaker(d.toolBreakerFailures, d.toolBreakerCooldownMs, options.now),
        definition: { type: 'function', function: { name: tool.name, description: tool.description, parameters: tool.parameters } },
      });
    }
    const profiles: Array<[string, Profile]> = Object.entries(config.profiles);
    for (const [name, profile] of profiles) {
      for (const tool of profile.tools) {
        if (!this.tools.has(tool)) {
          throw new ConfigError(`profiles.${name}.tools names "${tool}", which is not in daemon.tools`, {
            next: `Declare it in daemon.tools, or remove it from the profile. Declared: ${[...this.tools.keys()].join(', ') || 'none'}.`,
          });
        }
      }
    }
  }

  has(name: string): boolean {
    return this.tools.has(name);
  }

  /** OpenAI `tools` entries for these names. */
  definitions(names: readonly string[]): Entry['definition'][] {
    return names.map((n) => this.tools.get(n)!.definition);
  }

  breakerState(name: string): string | undefined {
    return this.tools.get(name)?.breaker.state;
  }

  /** Runs one call; every failure (bad arguments, open breaker, timeout, HTTP error) is an error result. */
  async run(call: ToolCallRequest, options: RunOptions): Promise<ToolResult> {
    const result = await this.runUncounted(call, options);
    // The model writes the name: only declared names become metric labels, so their number stays bounded.
    this.onCall?.(this.tools.has(call.name) ? call.name : UNKNOWN_TOOL_LABEL, result.outcome);
    return result;
  }

  private async runUncounted(call: ToolCallRequest, options: RunOptions): Promise<ToolResult> {
    // A tool of another profile is as unknown to this turn as one never declared.
    const entry = options.allowed.includes(call.name) ? this.tools.get(call.name) : undefined;
    if (!entry) return errorResult('unknown_tool', `there is no tool named ${call.name}`);
    let args: unknown;
    try {
      args = call.arguments.trim() === '' ? {} : JSON.parse(call.arguments);
    } catch {
      return errorResult('invalid_arguments', `the arguments for ${call.name} are not valid JSON`);
    }
    const problems = entry.validate(args);
    if (problems.length > 0) return errorResult('invalid_arguments', `invalid arguments for ${call.name}: ${problems.join('; ')}`);
    if (typeof args !== 'object' || args === null || Array.isArray(args)) {
      return errorResult('invalid_arguments', `the arguments for ${call.name} must be a JSON object`);
    }
    let request: ToolRequest;
    try {
      request = toolRequest(entry.config, args as Record<string, unknown>, this.env);
    } catch (err) {
      if (err instanceof ToolArgumentError) return errorResult('invalid_arguments', `invalid arguments for ${call.name}: ${err.message}`);
      return errorResult('failed', `the tool ${call.name} is misconfigured: ${(err as Error).message}`);
    }
    if (options.signal?.aborted) return ABORTED;
    if (!entry.breaker.tryAcquire()) {
      const seconds = Math.ceil(entry.breaker.retryInMs / 1000);
      return errorResult(
        'breaker_open',
        `the tool ${call.name} is unavailable after repeated failures; it will be tried again in about ${seconds} s`,
      );
    }
    const result = await runHttpTool(entry.config, request, options.signal);
    // A call cut because the client left says nothing about the endpoint.
    if (result.outcome === 'aborted') entry.breaker.abandon();
    else if (result.outcome === 'timeout' || result.outcome === 'failed') entry.breaker.failure();
    else entry.breaker.success();
    return result;
  }
}
