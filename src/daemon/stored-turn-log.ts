/*
 * daemon.logContent's log line for a stored turn. It shows the turn as the store keeps it: redacted with the
 * same detectors and attachment policy, because the raw text would put into daemon.log (a plain file, kept and
 * shipped by log tooling outside any retention or erasure) exactly what redaction keeps out of the database.
 */

import { redactMessages } from '../compliance/redact.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { ChatMessage } from '../core/messages.js';
import { detectorsFor } from '../store/protection.js';
import type { ContentProtection } from '../store/sessions.js';

export function storedTurnLogger(
  config: Config,
  protection: ContentProtection | undefined,
  log: Logger,
): (sessionId: string, messages: readonly ChatMessage[]) => void {
  // A store handed in from outside (tests, tools) has its own protection; the config's is what it would be.
  const detectors = protection?.detectors ?? detectorsFor(config);
  const attachments = protection?.attachments ?? config.store.attachments;
  return (sessionId, messages) => log(`session ${sessionId} stored`, redactMessages(messages, detectors, { attachments }));
}
