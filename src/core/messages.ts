// Chat messages as OpenAI's API carries them: the shape the daemon relays, the store keeps and redaction
// rewrites. Here, below all of them, so that none has to import another for it.

/** A chat message. content is a string, null, or an array of content parts. */
export interface ChatMessage {
  role: string;
  content?: string | null | unknown[];
  tool_calls?: unknown[];
  tool_call_id?: string;
  name?: string;
}
