// Connection loss, server restart or shutdown, overload, lock and serialization conflicts,
// statement timeout: the same call can succeed later.
const TRANSIENT_SQLSTATE = /^(08|53|57P0[1-3]$|57014$|40001$|40P01$|55P03$)/;
const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
// node-postgres reports a lost connection or an exhausted pool with these messages and no code.
const TRANSIENT_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed/i;

/** Whether a PostgreSQL or socket error means "unavailable now" rather than "wrong request". */
export function isTransientDatabaseError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (TRANSIENT_SQLSTATE.test(code) || TRANSIENT_NODE_CODES.has(code))) return true;
  return TRANSIENT_MESSAGES.test(error.message);
}

// Invalid authorization (wrong password, unknown login, no pg_hba entry) and a missing database:
// the server refuses this configuration, and asking again will not change its answer.
const REFUSED_LOGIN_SQLSTATE = /^(28|3D000$)/;

/** Whether PostgreSQL refused the connection's login or database, a fault of configuration. */
export function isRefusedLoginError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof Error && typeof code === 'string' && REFUSED_LOGIN_SQLSTATE.test(code);
}

// Class 22 (data exception: NUL bytes 22021/22P05, bad syntax 22P02, too long 22001, …) and class 23
// (integrity constraint: check 23514, not-null, foreign key): the same statement with the same data
// fails again. Unique and exclusion violations are the exception: two writers racing for one key
// cause them, and a retry finds the row the other one wrote.
const PERMANENT_SQLSTATE = /^(22|23)[0-9A-Z]{3}$/;
const RACE_SQLSTATES = new Set(['23505', '23P01']);

/** The SQLSTATE of a PostgreSQL error that no retry can fix, or undefined for anything else. */
export function permanentDatabaseErrorCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && PERMANENT_SQLSTATE.test(code) && !RACE_SQLSTATES.has(code) ? code : undefined;
}
