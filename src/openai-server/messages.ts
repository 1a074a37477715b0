/*
 * The parts of an OpenAI chat completion request the engines read: messages, tools and tool_choice, typed as
 * loosely as clients send them (validation is in requests.ts). Shared by the simulator and the CPU engine.
 */

export interface ChatMessage {
  role: string;
  content?: unknown;
  name?: string;
  tool_calls?: Array<{ id?: string; type?: string; function?: { name?: string; arguments?: string } }>;
  tool_call_id?: string;
}

export interface ToolDefinition {
  type?: string;
  function?: { name?: string; description?: string; parameters?: { properties?: Record<string, { type?: string }> } };
}

export type ToolChoice = 'none' | 'auto' | 'required' | { type?: string; function?: { name?: string } } | undefined;
