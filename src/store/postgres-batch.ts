// The calls of concurrent session turns gathered into shared round trips (#20's speed goal). A round trip to
// PostgreSQL costs both processes a socket write and a wakeup each way, and on a loaded box that, not the SQL,
// was most of a turn's cost (the daemon's writes to its pool's sockets were a third of its CPU at 50
// connections). Calls made while earlier ones are in flight wait and go together in the next one: a lone call
// goes at once (no timer), and under load a round trip and a commit serve several turns.

import { StoreUnavailableError } from './interface.js';
import { bytes, REQUEST_QUERY_MS, type PgDatabase } from './postgres-db.js';

export type Settled<O> = { value: O } | { error: unknown };

interface Waiting<I, O> {
  item: I;
  resolve(value: O): void;
  reject(err: unknown): void;
}

/**
 * `run` for the calls waiting, at most `inFlight` batches at a time and `max` calls in each. run settles each
 * call of its batch (one call's failure need not fail the others); when run itself throws, every call of the
 * batch gets that error.
 */
export function batcher<I, O>(
  run: (items: I[]) => Promise<Array<Settled<O>>>,
  { inFlight, max }: { inFlight: number; max: number },
): (item: I) => Promise<O> {
  const queue: Array<Waiting<I, O>> = [];
  let running = 0;
  let scheduled = false;
  const start = () => {
    scheduled = false;
    while (running < inFlight && queue.length > 0) {
      const batch = queue.splice(0, max);
      running++;
      run(batch.map((w) => w.item))
        .then(
          (results) =>
            batch.forEach((w, i) => {
              const r = results[i]!;
              if ('error' in r) w.reject(r.error);
              else w.resolve(r.value);
            }),
          (err: unknown) => batch.forEach((w) => w.reject(err)),
        )
        .finally(() => {
          running--;
          start();
        });
    }
  };
  return (item) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      // After the I/O callbacks of this turn of the event loop: the requests read together go together.
      if (!scheduled && running < inFlight) {
        scheduled = true;
        setImmediate(start);
      }
    });
}

/**
 * A batch of writes that failed for another reason than the connection (a bad value in one turn, a deadlock
 * with another daemon's batch) rolled back as a whole: each is tried again alone, so only its own fails.
 */
export async function eachAloneOnFailure<I, O>(
  items: I[],
  together: (items: I[]) => Promise<O[]>,
  alone: (item: I) => Promise<O>,
): Promise<Array<Settled<O>>> {
  try {
    return (await together(items)).map((value) => ({ value }));
  } catch (err) {
    // A lost connection may have lost the commit's answer, not the commit: never written twice.
    if (items.length === 1 || err instanceof StoreUnavailableError) throw err;
    return Promise.all(
      items.map((item) =>
        alone(item).then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        ),
      ),
    );
  }
}

/** A stored message's columns as the window reads them (MESSAGE_COLUMNS of postgres-sessions.ts). */
export type Row = [number, string, Buffer | null, number, Buffer | null, string | null, Buffer | null, number, string | null, number];

// The windows of several sessions (w.i: which one a row is for). LATERAL: each is the two index lookups of one
// session, however many rows the planner guesses the arrays hold.
const WINDOWS_SQL = `SELECT w.i, m.turn, m.role, m.content, m.content_parts, m.tool_calls, m.tool_call_id, m.name, m.seq, m.key_id, m.created_at
  FROM unnest($1::text[], $2::text[], $3::integer[], $4::bigint[]) WITH ORDINALITY AS w(tenant, id, turns, now, i)
  CROSS JOIN LATERAL (
    SELECT m.* FROM sessions s JOIN messages m ON m.tenant = s.tenant AND m.session_id = s.id AND m.turn > s.turns - w.turns
    WHERE s.tenant = w.tenant AND s.id = w.id AND s.expires_at > w.now) m
  ORDER BY w.i, m.turn, m.seq`;

export const APPEND_SQL =
  'SELECT o_turn, o_first FROM cs_llm_append_turn($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)';
const APPEND_MANY_SQL = 'SELECT 1 FROM cs_llm_append_turns($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)';
/** Batches in flight at once, and turns in one: a few of the pool's connections (store.poolSize), not all. */
const BATCHES = { inFlight: 2, max: 64 };

/** A turn written in the common case (in clear, no statement of the caller's after it): what a batch holds. */
export interface PlainTurn {
  head: [tenant: string, id: string, profile: string, now: number, expires: number, keep: number | null, n: number];
  rows: PreparedMessage[];
  record: string | null;
  outputs: number;
}
export interface PreparedMessage {
  role: string;
  content: string | null;
  parts: number;
  toolCalls: string | null;
  toolCallId: string | null;
  name: string | null;
}
type WindowCall = [tenant: string, id: string, turns: number, now: number];

/** The common case's turn writes and window loads of one store, each through its batcher. */
export function plainTurns(db: PgDatabase): {
  appendPlain: (turn: PlainTurn) => Promise<void>;
  loadWindows: (call: WindowCall) => Promise<Row[]>;
} {
  const appendOne = async (t: PlainTurn): Promise<void> => {
    await db.query({
      name: 'cs_llm_append',
      text: APPEND_SQL,
      query_timeout: REQUEST_QUERY_MS,
      values: [
        ...t.head,
        t.rows.map((r) => r.role),
        t.rows.map((r) => bytes(r.content)),
        t.rows.map((r) => r.parts),
        t.rows.map((r) => bytes(r.toolCalls)),
        t.rows.map((r) => r.toolCallId),
        t.rows.map((r) => bytes(r.name)),
        t.record,
        t.outputs,
      ],
    });
  };
  const appendMany = async (turns: PlainTurn[]): Promise<void[]> => {
    if (turns.length === 1) {
      await appendOne(turns[0]!);
      return [undefined];
    }
    const head = (i: number) => turns.map((t) => t.head[i]);
    const rows = turns.flatMap((t) => t.rows);
    await db.query({
      name: 'cs_llm_append_many',
      text: APPEND_MANY_SQL,
      query_timeout: REQUEST_QUERY_MS,
      values: [
        ...[0, 1, 2, 3, 4, 5, 6].map(head),
        rows.map((r) => r.role),
        rows.map((r) => bytes(r.content)),
        rows.map((r) => r.parts),
        rows.map((r) => bytes(r.toolCalls)),
        rows.map((r) => r.toolCallId),
        rows.map((r) => bytes(r.name)),
        turns.map((t) => t.record),
        turns.map((t) => t.outputs),
      ],
    });
    return turns.map(() => undefined);
  };
  const appendPlain = batcher((turns: PlainTurn[]) => eachAloneOnFailure(turns, appendMany, appendOne), BATCHES);

  const loadWindows = batcher(async (calls: WindowCall[]): Promise<Array<Settled<Row[]>>> => {
    const result = await db.query({
      name: 'cs_llm_windows',
      text: WINDOWS_SQL,
      values: [calls.map((c) => c[0]), calls.map((c) => c[1]), calls.map((c) => c[2]), calls.map((c) => c[3])],
      rowMode: 'array',
      query_timeout: REQUEST_QUERY_MS,
    });
    const out = calls.map(() => ({ value: [] as Row[] }));
    for (const r of result.rows as Array<[number, ...Row]>) out[r[0] - 1]!.value.push(r.slice(1) as Row);
    return out;
  }, BATCHES);

  return { appendPlain, loadWindows };
}
