// Where the CLI's writing store commands run: in the daemon when one runs on this database (over its control
// socket, so that one process writes it and a command never holds a lock the daemon waits for), else on a
// store this command opens itself. The output is the same either way.

import type { LoadedConfig } from '../core/config.js';
import { remoteAdmin, runningDaemonFor } from '../daemon/control-client.js';
import { localAdmin, type StoreAdmin } from '../store/admin.js';
import type { ContentCipher } from '../store/crypto.js';
import { isPostgresUrl, storeFile, type Store } from '../store/store.js';

export async function withStoreAdmin<T>(
  loaded: LoadedConfig,
  options: {
    /** Opens the store when no daemon serves it (with the protection the operation needs). */
    open: () => Promise<Store>;
    /** Keys that open the current rows, for a key rotation on a store opened here. */
    from?: readonly ContentCipher[];
    /** The audit key file that signs a retention anchor made here (made on first use). */
    auditKeyFile?: string;
    /** Given explicitly (--key-file): a running daemon refuses it when it signs with another. */
    explicitAuditKeyFile?: string;
  },
  /** `daemon`: the pid of the daemon that does it, null when this command does. */
  run: (admin: StoreAdmin, context: { file: string; daemon: number | null }) => Promise<T>,
): Promise<T> {
  const file = storeFile(loaded.config, loaded.paths);
  // A PostgreSQL store takes writers from every host at once: the command writes it itself.
  const daemon = isPostgresUrl(file) ? null : runningDaemonFor(loaded.paths, file);
  if (daemon !== null) {
    const admin = remoteAdmin(
      loaded.paths.controlSocket,
      options.explicitAuditKeyFile ? { auditKeyFile: options.explicitAuditKeyFile } : {},
    );
    return run(admin, { file, daemon });
  }
  const store = await options.open();
  try {
    const { auditKeyFile } = options;
    const admin = localAdmin(store, {
      ...(options.from ? { from: options.from } : {}),
      ...(auditKeyFile ? { auditKey: () => store.audit.keyring(auditKeyFile) } : {}),
    });
    return await run(admin, { file: store.file, daemon: null });
  } finally {
    await store.close();
  }
}
