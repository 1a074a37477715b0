// Session turns that reach the SQLite store in the same turn of the event loop are committed together: one
// transaction, each turn in a savepoint of its own. Most of a turn's append is the commit (the WAL frames of
// every page it changed, the file locks); turns of other sessions share the messages table's last page and
// the ends of the expiry indexes, so a group writes those once. Each caller's promise still settles only
// after the transaction holding its turn committed (or with the error that kept its turn out), so a turn is
// stored before its reply's last byte as before. A turn alone goes straight through (no savepoint), and one
// that its caller knows has no company (no other turn under way) without waiting for the poll phase either.

/** Runs the turns in one transaction; the error of each turn that was kept out (undefined: stored). */
export type AppendGroup<T> = (turns: readonly T[]) => Array<unknown>;

export interface GroupCommit<T> {
  /** Settles once `turn` is committed, or with its error; `alone`: nothing can join it, commit now. */
  append(turn: T, alone?: boolean): Promise<void>;
  /** Commits what is waiting now (the store is closing). */
  flush(): void;
}

/**
 * `write` runs an operation under the store's lock wait (lock-wait.ts): a group that finds another process's
 * lock is tried again whole, later.
 */
export function createGroupCommit<T>(write: <R>(op: () => R) => Promise<R>, one: (turn: T) => void, group: AppendGroup<T>): GroupCommit<T> {
  let waiting: Array<{ turn: T; resolve: () => void; reject: (err: unknown) => void }> = [];
  let scheduled: NodeJS.Immediate | null = null;
  const flush = (): void => {
    if (scheduled) clearImmediate(scheduled);
    scheduled = null;
    const batch = waiting;
    waiting = [];
    if (batch.length === 0) return;
    if (batch.length === 1) {
      const only = batch[0]!;
      write(() => one(only.turn)).then(only.resolve, only.reject);
      return;
    }
    write(() => group(batch.map((w) => w.turn))).then(
      (errors) => {
        for (let i = 0; i < batch.length; i++) {
          if (errors[i] === undefined) batch[i]!.resolve();
          else batch[i]!.reject(errors[i]);
        }
      },
      (err: unknown) => {
        for (const w of batch) w.reject(err);
      },
    );
  };
  return {
    append(turn, alone = false) {
      return new Promise<void>((resolve, reject) => {
        waiting.push({ turn, resolve, reject });
        // Alone, waiting would only add a turn of the event loop to the reply (at one connection, every turn).
        if (alone) flush();
        // After the poll phase: the replies that arrived with this one have queued their turns by then.
        else scheduled ??= setImmediate(flush);
      });
    },
    flush,
  };
}
