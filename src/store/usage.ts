// Usage and cost aggregates (docs/cost-and-capacity.md): tokens and money per UTC day, upstream, model, tenant,
// API key and currency. The daemon sums requests in memory and adds its sums here every store.usageFlushMs,
// so the table grows with the combinations in use, never with the requests.
import type { SqliteDatabase, Synchronous } from './database.js';

export interface UsageRow {
  /** YYYY-MM-DD, UTC. */
  day: string;
  upstream: string;
  /** The model name the client asked for; '(idle)' for time-based cost without traffic. */
  model: string;
  /** '(idle)' for time-based cost without traffic. */
  tenant: string;
  /** The API key's public prefix (as `cs-llm keys list` shows it); '' without a key. */
  keyId: string;
  /** ISO 4217 code; '' for an upstream without a price. */
  currency: string;
  /** Upstream requests answered (a tool turn makes several). */
  requests: number;
  /** Session turns that started a session (its first stored turn). */
  sessions: number;
  promptTokens: number;
  /** Of promptTokens, those the engine served from its prefix cache (when it reports them). */
  cachedTokens: number;
  completionTokens: number;
  /** In units of the currency. */
  cost: number;
}

/** The figures of a row, without its key. */
export type UsageFigures = Pick<UsageRow, 'requests' | 'sessions' | 'promptTokens' | 'cachedTokens' | 'completionTokens' | 'cost'>;

export interface UsageStore {
  /** Adds each row's figures to the stored aggregate of its key, in one transaction. */
  add(rows: readonly UsageRow[]): Promise<void>;
  /** The aggregates of the days from `fromDay` to `toDay` (YYYY-MM-DD, inclusive; toDay unset: all later ones). */
  query(range: { fromDay: string; toDay?: string }): Promise<UsageRow[]>;
}

const NANOS = 1e9;

interface Stored {
  day: string;
  upstream: string;
  model: string;
  tenant: string;
  key_id: string;
  currency: string;
  requests: number;
  sessions: number;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  cost_nanos: number;
}

export function createSqliteUsage(db: SqliteDatabase): Synchronous<UsageStore> {
  const upsert = db.prepare(`
    INSERT INTO usage_daily (day, upstream, model, tenant, key_id, currency, requests, sessions, prompt_tokens, cached_tokens,
                             completion_tokens, cost_nanos)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (day, upstream, model, tenant, key_id, currency) DO UPDATE SET
      requests = requests + excluded.requests,
      sessions = sessions + excluded.sessions,
      prompt_tokens = prompt_tokens + excluded.prompt_tokens,
      cached_tokens = cached_tokens + excluded.cached_tokens,
      completion_tokens = completion_tokens + excluded.completion_tokens,
      cost_nanos = cost_nanos + excluded.cost_nanos`);
  const range = db.prepare<[string, string], Stored>('SELECT * FROM usage_daily WHERE day >= ? AND day <= ? ORDER BY day');
  const addAll = db.transaction((rows: readonly UsageRow[]) => {
    for (const r of rows) {
      upsert.run(
        r.day,
        r.upstream,
        r.model,
        r.tenant,
        r.keyId,
        r.currency,
        r.requests,
        r.sessions,
        r.promptTokens,
        r.cachedTokens,
        r.completionTokens,
        Math.round(r.cost * NANOS),
      );
    }
  });
  return {
    add(rows) {
      if (rows.length > 0) addAll(rows);
    },
    query({ fromDay, toDay }) {
      return range.all(fromDay, toDay ?? '9999-12-31').map((s) => ({
        day: s.day,
        upstream: s.upstream,
        model: s.model,
        tenant: s.tenant,
        keyId: s.key_id,
        currency: s.currency,
        requests: s.requests,
        sessions: s.sessions,
        promptTokens: s.prompt_tokens,
        cachedTokens: s.cached_tokens,
        completionTokens: s.completion_tokens,
        cost: s.cost_nanos / NANOS,
      }));
    },
  };
}
