/**
 * The exit codes of every `tenure` command that talks to the API, so a script can tell a typo
 * from a missing resource from a refusal from an outage (docs/cli.md lists them).
 * `tenure audit verify|export` keep their own documented codes (0 intact, 1 broken, 2 could not check).
 */
export const EXIT = {
  ok: 0,
  /** The command ran and the work failed: a failed import row, a halted rollout, a grant that ended without access, a server error. */
  failed: 1,
  /** The command line or the input was wrong: unknown option, missing argument, a 400/422 with field paths. */
  usage: 2,
  /** The API answered 404: the resource does not exist, or you may not see it. */
  notFound: 3,
  /** The API refused: not signed in or not allowed (401/403), or the resource's state does not allow it (409, 412, 428). */
  refused: 4,
  /** The API could not be reached, or answered that it is unavailable (502/503/504). */
  unreachable: 5,
  /** Interrupted (Ctrl-C) while waiting or watching; the work itself goes on. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit code for an API error answer's HTTP status. */
export function exitCodeForStatus(status: number): ExitCode {
  if (status === 400 || status === 413 || status === 415 || status === 422) return EXIT.usage;
  if (status === 404) return EXIT.notFound;
  if (status === 401 || status === 403 || status === 409 || status === 412 || status === 428) return EXIT.refused;
  if (status === 502 || status === 503 || status === 504) return EXIT.unreachable;
  return EXIT.failed;
}
