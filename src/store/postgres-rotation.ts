// Content key rotation on PostgreSQL (key-rotation.ts says what it does): every message re-encrypted under
// the new key in batches, one transaction each, keyset-paged by the primary key; then the Responses API's
// settings and metadata; the old keys retired; then a VACUUM so the old values leave the tables.

import { ConflictError } from '../core/errors.js';
import type { ContentCipher } from './crypto.js';
import type { RotationResult } from './key-rotation.js';
import type { PgDatabase } from './postgres-db.js';
import { recordContext } from './response-records.js';
import { contentContext, missingKeyError, type EncryptedField } from './sessions.js';

interface Row {
  tenant: string;
  session_id: string;
  turn: number;
  seq: number;
  content: Buffer | null;
  tool_calls: Buffer | null;
  name: Buffer | null;
  key_id: string | null;
}

export async function rotatePgContentKey(
  db: PgDatabase,
  options: {
    from: readonly ContentCipher[];
    to: ContentCipher;
    scrub: () => Promise<boolean>;
    batch?: number;
    now?: number;
    signal?: AbortSignal;
  },
): Promise<RotationResult> {
  const batch = options.batch ?? 500;
  const keys = new Map(options.from.map((k) => [k.keyId, k]));
  const { to } = options;
  const now = options.now ?? Date.now();
  const open = (value: Buffer | null, keyId: string | null, context: string): string | null => {
    if (value === null) return null;
    if (keyId === null) return value.toString('utf8');
    const key = keys.get(keyId);
    if (!key) throw missingKeyError(keyId, options.from[0] ?? null);
    return key.decrypt(value, context);
  };
  await db.query('INSERT INTO content_keys (id, first_used_at, retired_at) VALUES ($1, $2, NULL) ON CONFLICT (id) DO NOTHING', [
    to.keyId,
    now,
  ]);
  let rows = 0;
  let alreadyCurrent = 0;
  let after: [string, string, number, number] = ['', '', -1, -1];
  for (;;) {
    if (options.signal?.aborted) {
      throw new ConflictError(`key rotation stopped after ${rows} row(s) (${String(options.signal.reason ?? 'cancelled')})`, {
        next: 'Run cs-llm store rotate-key again with the same key file: it goes on where it stopped.',
      });
    }
    const done = await db.tx(async (client) => {
      const page = (
        await client.query<Row>(
          `SELECT tenant, session_id, turn, seq, content, tool_calls, name, key_id FROM messages
           WHERE (tenant, session_id, turn, seq) > ($1, $2, $3, $4) ORDER BY tenant, session_id, turn, seq LIMIT $5 FOR UPDATE`,
          [...after, batch],
        )
      ).rows;
      let changed = 0;
      let current = 0;
      for (const r of page) {
        if (r.key_id === to.keyId) {
          current++;
          continue;
        }
        const seal = (field: EncryptedField, value: Buffer | null): Buffer | null => {
          const context = contentContext(r.tenant, r.session_id, r.seq, field);
          const text = open(value, r.key_id, context);
          return text === null ? null : to.encrypt(text, context);
        };
        await client.query(
          'UPDATE messages SET content = $1, tool_calls = $2, name = $3, key_id = $4 WHERE tenant = $5 AND session_id = $6 AND turn = $7 AND seq = $8',
          [
            seal('content', r.content),
            seal('tool_calls', r.tool_calls),
            seal('name', r.name),
            to.keyId,
            r.tenant,
            r.session_id,
            r.turn,
            r.seq,
          ],
        );
        changed++;
      }
      const last = page[page.length - 1];
      return { changed, current, last: last ? ([last.tenant, last.session_id, last.turn, last.seq] as typeof after) : null };
    });
    rows += done.changed;
    alreadyCurrent += done.current;
    if (!done.last) break;
    after = done.last;
  }
  rows += await db.tx(async (client) => {
    let n = 0;
    const settings = await client.query<{
      tenant: string;
      session_id: string;
      turn: number;
      created_at: number;
      settings: Buffer;
      key_id: string | null;
    }>(
      'SELECT tenant, session_id, turn, created_at, settings, key_id FROM response_settings WHERE key_id IS DISTINCT FROM $1 AND settings IS NOT NULL',
      [to.keyId],
    );
    for (const r of settings.rows) {
      const context = recordContext('responses', r.tenant, r.session_id, r.created_at);
      await client.query('UPDATE response_settings SET settings = $1, key_id = $2 WHERE tenant = $3 AND session_id = $4 AND turn = $5', [
        to.encrypt(open(r.settings, r.key_id, context)!, context),
        to.keyId,
        r.tenant,
        r.session_id,
        r.turn,
      ]);
      n++;
    }
    const threads = await client.query<{ tenant: string; id: string; metadata: Buffer; key_id: string | null }>(
      'SELECT tenant, id, metadata, key_id FROM threads WHERE key_id IS DISTINCT FROM $1 AND metadata IS NOT NULL',
      [to.keyId],
    );
    for (const r of threads.rows) {
      const context = recordContext('threads', r.tenant, r.id);
      await client.query('UPDATE threads SET metadata = $1, key_id = $2 WHERE tenant = $3 AND id = $4', [
        to.encrypt(open(r.metadata, r.key_id, context)!, context),
        to.keyId,
        r.tenant,
        r.id,
      ]);
      n++;
    }
    return n;
  });
  const retired = (
    await db.query<{ id: string }>('UPDATE content_keys SET retired_at = $1 WHERE id <> $2 AND retired_at IS NULL RETURNING id', [
      now,
      to.keyId,
    ])
  ).rows.map((r) => r.id);
  return { rows, alreadyCurrent, scrubbed: await options.scrub(), retired };
}
