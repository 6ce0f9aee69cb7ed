/**
 * pg_stat_statements around a benchmark phase (issue #14): how many statements (round trips) one
 * request costs and where PostgreSQL's time goes. Counters are cluster-wide, so every reading is
 * filtered to the bench database and compared as a difference (nothing is reset: other databases'
 * statistics on a shared server stay as they are).
 */
import type pg from 'pg';

interface Row {
  key: string;
  /** False for statements run inside another (foreign-key checks, functions): not round trips. */
  toplevel: boolean;
  query: string;
  calls: number;
  totalMs: number;
  rows: number;
}

export type Snapshot = Map<string, Row>;

/**
 * Background statements: pg-boss's polling, completion and maintenance, and the notification
 * listener's health check. A job INSERT is the request's own (the outbox write in its transaction).
 */
const isBackground = (query: string) =>
  (/pgboss\./i.test(query) && !/INSERT INTO\s+"?pgboss"?\.job\b/i.test(query)) || /^\s*(LISTEN|SELECT 1)\b|pg_try_advisory/i.test(query);

export class StatementStats {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly databaseName: string,
    readonly available: boolean,
  ) {}

  /** Creates the extension in the bench database; `available` is false when it is not preloaded. */
  static async open(pool: pg.Pool, databaseName: string): Promise<StatementStats> {
    try {
      await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      await pool.query('SELECT 1 FROM pg_stat_statements LIMIT 1');
      return new StatementStats(pool, databaseName, true);
    } catch {
      return new StatementStats(pool, databaseName, false);
    }
  }

  async snapshot(): Promise<Snapshot> {
    const map: Snapshot = new Map();
    if (!this.available) return map;
    const { rows } = await this.pool.query<{ key: string; toplevel: boolean; query: string; calls: string; total_ms: number; rows: string }>(
      `SELECT s.userid::text || ':' || s.queryid::text || ':' || s.toplevel::text AS key, s.toplevel, s.query, s.calls, s.total_exec_time + s.total_plan_time AS total_ms, s.rows
       FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1`,
      [this.databaseName],
    );
    for (const r of rows) map.set(r.key, { key: r.key, toplevel: r.toplevel, query: r.query, calls: Number(r.calls), totalMs: Number(r.total_ms), rows: Number(r.rows) });
    return map;
  }

  /** Prints statements per request (request path and background) and the top statements by total time. */
  print(before: Snapshot, after: Snapshot, requests: number, top: number): void {
    const deltas: Row[] = [];
    for (const [key, row] of after) {
      const was = before.get(key);
      const calls = row.calls - (was?.calls ?? 0);
      if (calls <= 0) continue;
      // Our own snapshot query is not the app's.
      if (/FROM pg_stat_statements/i.test(row.query) || /pg_stat_activity/i.test(row.query)) continue;
      deltas.push({ key, toplevel: row.toplevel, query: row.query, calls, totalMs: row.totalMs - (was?.totalMs ?? 0), rows: row.rows - (was?.rows ?? 0) });
    }
    const n = Math.max(1, requests);
    // Round trips are top-level statements; nested ones (foreign-key checks …) cost time, not trips.
    const fg = deltas.filter((d) => d.toplevel && !isBackground(d.query));
    const bg = deltas.filter((d) => d.toplevel && isBackground(d.query));
    const sum = (rows: Row[], f: (r: Row) => number) => rows.reduce((a, r) => a + f(r), 0);
    // Nested statements' time is inside their top-level statement's already.
    const allMs = sum(deltas.filter((d) => d.toplevel), (r) => r.totalMs);
    console.log(
      `    round trips (top-level statements) per request: ${(sum(fg, (r) => r.calls) / n).toFixed(2)} on the request path + ${(sum(bg, (r) => r.calls) / n).toFixed(2)} background ` +
        `(pg-boss, notifications); PostgreSQL execution+planning ${((allMs / n) * 1000).toFixed(0)} µs per request ` +
        `(${((sum(fg, (r) => r.totalMs) / n) * 1000).toFixed(0)} request path)`,
    );
    console.log(`    top statements by total time (calls per request, µs per call, share of all statement time):`);
    for (const d of deltas.sort((a, b) => b.totalMs - a.totalMs).slice(0, top)) {
      const text = d.query.replace(/\s+/g, ' ').trim();
      console.log(
        `      ${(d.calls / n).toFixed(2).padStart(6)}  ${((d.totalMs / d.calls) * 1000).toFixed(0).padStart(6)} µs  ${((d.totalMs / Math.max(allMs, 1e-9)) * 100).toFixed(1).padStart(5)} %  ` +
          `${d.toplevel ? '' : '[nested] '}${isBackground(d.query) ? '[bg] ' : ''}${text.length > 130 ? `${text.slice(0, 127)}...` : text}`,
      );
    }
  }
}
