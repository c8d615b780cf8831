import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'pg';
import { logger } from '../logger';
import { sqlDir } from '../paths';

export type MigrationResult = { applied: string[]; alreadyApplied: string[] };

// Any constant works; it only has to be the same for every opsledger process.
const MIGRATION_LOCK_KEY = 0x6f70736c; // 'opsl'

// The files of sql/ before it was consolidated (never released). A database that recorded them
// cannot be upgraded in place; the refusal below says how to start over.
const PRE_CONSOLIDATION_MIGRATIONS = new Set([
  '001_ledger.sql', '002_ledger_verify.sql', '003_app_role.sql', '004_ledger_rollups.sql',
  '005_ledger_ddl_guard.sql', '007_admission.sql', '008_ledger_failures.sql',
  '009_ledger_append_cost.sql', '010_ledger_known_services.sql',
]);

/**
 * Applies the ordered plain .sql files of sql/ once each, as the connecting (owner) role.
 * An advisory lock makes two processes starting at once take turns; each file runs in its own
 * transaction with its name and checksum, so a failed file leaves nothing half-applied and an
 * edited, already-applied file is refused rather than silently skipped.
 *
 * Migrations are append-only: a file, once in sql/, is never edited, renamed or removed; a change
 * to the schema is a new file with the next number (sql/README.md). A database that recorded a
 * file sql/ does not have is refused before anything is applied: it was made by other schema
 * files (those of before the consolidation, or a newer opsledger) and this sql/ cannot tell what
 * it holds.
 */
export async function migrate(connectionString: string, dir = sqlDir): Promise<MigrationResult> {
  const files = (await fs.readdir(dir)).filter((name) => name.endsWith('.sql')).sort();
  const client = new Client({ connectionString, application_name: 'opsledger-migrate' });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      name text PRIMARY KEY,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Map(
      (await client.query<{ name: string; checksum: string }>('SELECT name, checksum FROM schema_migrations')).rows.map(
        (row) => [row.name, row.checksum],
      ),
    );
    const unknown = [...done.keys()].filter((name) => !files.includes(name)).sort();
    if (unknown.length > 0) throw new Error(unknownMigrationsMessage(unknown));
    const result: MigrationResult = { applied: [], alreadyApplied: [] };
    for (const name of files) {
      const sql = await fs.readFile(path.join(dir, name), 'utf8');
      const checksum = crypto.createHash('sha256').update(sql).digest('hex');
      const recorded = done.get(name);
      if (recorded !== undefined) {
        if (recorded !== checksum) {
          throw new Error(`migration ${name} was changed after it was applied; add a new file instead`);
        }
        result.alreadyApplied.push(name);
        continue;
      }
      await applyOne(client, name, sql, checksum);
      result.applied.push(name);
    }
    return result;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
}

function unknownMigrationsMessage(unknown: string[]): string {
  const names = unknown.join(', ');
  if (unknown.some((name) => PRE_CONSOLIDATION_MIGRATIONS.has(name))) {
    return (
      `this database was made by the schema files sql/ held before it was consolidated (it recorded ${names}); ` +
      'they were never released and such a database cannot be upgraded. Start over with an empty database: ' +
      'for the embedded PostgreSQL of `opsledger dev`, stop it and remove its data folder (.opsledger, or ' +
      'OPSLEDGER_DATA_DIR); otherwise drop and recreate the database. Then run `opsledger migrate` again'
    );
  }
  return (
    `this database recorded migrations that sql/ does not have (${names}): ` +
    'another opsledger (a newer one?) migrated it; migrate and run it with that one'
  );
}

async function applyOne(client: Client, name: string, sql: string, checksum: string): Promise<void> {
  logger.debug({ migration: name }, 'applying migration');
  try {
    await client.query('BEGIN');
    // The DDL guards of the ledger let schema changes through only on this path.
    await client.query("SELECT set_config('opsledger.migrating', 'on', true)");
    await client.query(sql);
    await client.query('INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)', [name, checksum]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw new Error(`migration ${name} failed: ${(err as Error).message}`, { cause: err });
  }
}
