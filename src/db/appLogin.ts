import { Client } from 'pg';
import { ConfigError } from '../config';

/** A login for the application: `user` holds the grants of `role` (opsledger_app) and nothing else of ours. */
export type AppLogin = { user: string; password: string; role: string };

/** The app login of a database: roles belong to the whole server, so it is named after the database. */
export function appLoginUser(database: string): string {
  return `${database}_app_login`;
}

/** `url` with its user and password replaced: the same server and database, as `login`. */
export function loginUrl(url: string, login: Pick<AppLogin, 'user' | 'password'>): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(login.user);
  parsed.password = encodeURIComponent(login.password);
  return parsed.toString();
}

/**
 * Creates `login` or brings it back to its password and grant, so that a data folder and the
 * server agree after either was reset. Run by a role that may create roles (the embedded
 * cluster's superuser, a test server's); the role statements take no parameters, hence the
 * quoting. What else the login may have been granted since is for refuseOwnerLogin to find.
 */
export async function ensureAppLogin(adminUrl: string, login: AppLogin): Promise<void> {
  const client = new Client({ connectionString: adminUrl, application_name: 'opsledger-setup' });
  await client.connect();
  try {
    const user = client.escapeIdentifier(login.user);
    const password = client.escapeLiteral(login.password);
    const { rowCount } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [login.user]);
    await client.query(`${rowCount ? 'ALTER' : 'CREATE'} ROLE ${user} LOGIN PASSWORD ${password}`);
    await client.query(`GRANT ${client.escapeIdentifier(login.role)} TO ${user}`);
  } finally {
    await client.end();
  }
}

/** Drops the app login of `database` (once nothing of that database is left to use it): roles outlive the databases they were made for. */
export function dropAppLogin(adminUrl: string, database: string): Promise<void> {
  return dropLogin(adminUrl, appLoginUser(database));
}

/** Drops the login `user`, if there is one. */
export async function dropLogin(adminUrl: string, user: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl, application_name: 'opsledger-setup' });
  await client.connect();
  try {
    await client.query(`DROP ROLE IF EXISTS ${client.escapeIdentifier(user)}`);
  } finally {
    await client.end();
  }
}

/**
 * Roles the session's login can act as (SET ROLE NONE and SET ROLE reach every one) that could
 * rewrite the ledger: the owner of tasks, of its schema (which may drop it) or of the database,
 * a superuser, or a role that may create roles (and so grant itself the owner). A login that may
 * create temporary tables can hide the ledger from its own session behind one (sql/005_app_role.sql).
 */
const OWNER_POWERS_SQL = `
  SELECT session_user AS login, powers.role, powers.power
    FROM (SELECT r.rolname AS role,
                 CASE WHEN r.rolsuper THEN 'is a superuser'
                      WHEN r.rolcreaterole THEN 'may create roles, and so grant itself the owner'
                      WHEN r.oid = c.relowner THEN 'owns the ledger'
                      WHEN r.oid = n.nspowner THEN 'owns the ledger''s schema'
                      ELSE 'owns the database'
                 END AS power
            FROM pg_roles r
            JOIN pg_database d ON d.datname = current_database()
            LEFT JOIN pg_class c ON c.oid = to_regclass('tasks')
            LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE pg_has_role(session_user, r.oid, 'MEMBER')
             AND (r.rolsuper OR r.rolcreaterole OR r.oid IN (c.relowner, n.nspowner, d.datdba))
          UNION ALL
          SELECT session_user, 'may create temporary tables'
           WHERE has_database_privilege(session_user, current_database(), 'TEMPORARY')) powers
   ORDER BY powers.role <> session_user, powers.role, powers.power
   LIMIT 3`;

/**
 * The worker's and the API's pools hold the application's grants and nothing more: a login that
 * could become the ledger's owner turns any bug that runs SQL into a rewritten ledger whose
 * hashes still verify. Asked on a session of its own, without the pools' switch to the
 * application role, which an owner that is not a member of it could not even make.
 * `variable` names where the URL came from.
 */
export async function refuseOwnerLogin(url: string, variable: string): Promise<void> {
  const client = new Client({ connectionString: url, application_name: 'opsledger' });
  await client.connect();
  let powers: { login: string; role: string; power: string }[];
  try {
    powers = (await client.query<{ login: string; role: string; power: string }>(OWNER_POWERS_SQL)).rows;
  } finally {
    await client.end();
  }
  if (powers.length === 0) return;
  throw new ConfigError([
    `${variable}: the login ${powers[0]!.login} could rewrite the ledger (${powers.map((p) => `${p.role} ${p.power}`).join('; ')}); ` +
      "the worker and the API connect as the application's own login, a member of opsledger_app only " +
      '(README, Configuration); `opsledger migrate` is what runs as the owner',
  ]);
}
