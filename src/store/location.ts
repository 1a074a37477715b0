// Where a store lives: a SQLite file path, or a postgres:// URL (the PostgreSQL store). Kept apart from the
// stores themselves so that telling the two apart loads neither driver.

export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/** The URL without its password, for messages, logs and the daemon's state file. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/**
 * What a deletion leaves behind, once the store's scrub finished: SQLite's secure_delete and a TRUNCATE
 * checkpoint leave nothing in its files; PostgreSQL's VACUUM removes the dead tuples, and more it cannot do
 * (docs/data-flow.md: erasure on PostgreSQL).
 */
export function erasureNote(location: string, it: 'its' | 'their'): string {
  if (!isPostgresUrl(location)) return `${it} text is gone from the database and WAL files`;
  return (
    `the tables were vacuumed, so no row version holds ${it} text any more; PostgreSQL still has it in WAL segments until they are ` +
    'recycled after checkpoints, possibly in the free space of table pages until it is reused (cs-llm store scrub --rewrite runs VACUUM FULL), and in ' +
    'any WAL archive or base backup taken before (docs/data-flow.md)'
  );
}
