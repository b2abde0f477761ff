import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';

// From source this module sits beside migrations/; compiled, it runs from dist/db/ while the SQL
// files stay in db/migrations/ (the image copies them there too).
const here = path.dirname(fileURLToPath(import.meta.url));
export const MIGRATIONS_DIR =
  path.basename(path.dirname(here)) === 'dist' ? path.join(here, '..', '..', 'db', 'migrations') : path.join(here, 'migrations');
export const MIGRATIONS_TABLE = 'tenure_migrations';

export interface MigrationLogger {
  info(message: string): void;
}

/**
 * Applies pending SQL migrations in file order. An advisory lock makes concurrent
 * starts wait for each other, and applied files are recorded, so running twice is a no-op.
 */
export async function migrate(databaseUrl: string, logger?: MigrationLogger): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    migrationsTable: MIGRATIONS_TABLE,
    direction: 'up',
    count: Infinity,
    checkOrder: true,
    advisoryLockMode: 'wait',
    singleTransaction: true,
    log: () => undefined,
  });
  const names = applied.map((m) => m.name);
  if (names.length > 0) logger?.info(`applied migrations: ${names.join(', ')}`);
  return names;
}
