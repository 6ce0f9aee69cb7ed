/**
 * Whether a database error is a violation of the named constraint or unique index (PostgreSQL's
 * `constraint` field; the message as a fallback for drivers that do not expose it).
 */
export function violatesConstraint(error: unknown, constraint: string): boolean {
  if (!error || typeof error !== 'object') return false;
  const e = error as { constraint?: unknown; message?: unknown };
  return e.constraint === constraint || (typeof e.message === 'string' && e.message.includes(`"${constraint}"`));
}
