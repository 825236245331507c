import type { DriverResult } from '../database/driver.js';
import { statementName } from '../database/statement-name.js';
import type { CompiledField, CompiledQuery } from '../dialect/query-compiler.js';
import { UsageError } from '../errors.js';
import type { RowChange } from '../live/row-changes.js';
import type { QueryRunner } from './executor.js';

/** What a write without `returning()` resolves to. */
export interface WriteResult {
  /** How many rows the statement inserted, updated or deleted. */
  rowsAffected: number;
}

function mapRow(fields: readonly CompiledField[], raw: readonly unknown[]): Record<string, unknown> {
  const row: Record<string, any> = {};
  let nested = false;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    let value = raw[i];
    if (value !== null && value !== undefined && field.decode) value = field.decode(value);
    else if (value === undefined) value = null;
    const path = field.path;
    if (path.length === 1) row[path[0]!] = value;
    else {
      nested = true;
      const group = (row[path[0]!] ??= {});
      group[path[1]!] = value;
    }
  }
  if (nested) {
    // A left-joined table with no matching row comes back as null, not as an object of nulls.
    for (const field of fields) {
      if (field.group && row[field.group] && Object.values(row[field.group]).every((v) => v === null)) {
        row[field.group] = null;
      }
    }
  }
  return row;
}

export function mapResult(compiled: CompiledQuery, result: DriverResult): unknown {
  const fields = compiled.fields;
  if (!fields) return { rowsAffected: result.rowCount } satisfies WriteResult;
  const rows = result.rows as unknown[][];
  const out = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = mapRow(fields, rows[i]!);
  return out;
}

/** Runs a compiled query with its parameters and maps the rows; synchronous drivers stay synchronous. */
export function runCompiled(
  runner: QueryRunner,
  compiled: CompiledQuery,
  params: readonly unknown[],
  name?: string,
  rowChanges?: (result: unknown) => readonly RowChange[] | undefined,
): unknown {
  const query = {
    sql: compiled.sql,
    params,
    arrayMode: compiled.fields !== undefined,
    needsBigInt: compiled.needsBigInt,
    name,
    keepPrepared: compiled.keepPrepared,
  };
  const result = runner.run(query);
  if (result instanceof Promise) {
    return result.then((r) => {
      const mapped = mapResult(compiled, r);
      if (compiled.writes) runner.wrote(compiled.writes, rowChanges?.(mapped));
      return mapped;
    });
  }
  const mapped = mapResult(compiled, result);
  if (compiled.writes) runner.wrote(compiled.writes, rowChanges?.(mapped));
  return mapped;
}

/** `runCompiled` as a promise, with errors thrown while starting turned into a rejection. */
export function runCompiledAsync<T>(
  runner: QueryRunner,
  compiled: () => CompiledQuery,
  rowChanges?: (result: unknown) => readonly RowChange[] | undefined,
): Promise<T> {
  try {
    const c = compiled();
    if (c.slots.length > 0) {
      throw new UsageError(
        `this query has placeholders (${c.slots.map((s) => s.name).join(', ')}): call .prepare() and pass their values to execute()`,
      );
    }
    const result = runCompiled(runner, c, c.params, undefined, rowChanges);
    return (result instanceof Promise ? result : Promise.resolve(result)) as Promise<T>;
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Runs the statements one query was compiled into (a big plain insert split by the dialect, see
 * `QueryCompiler.compileInsertStatements`) as that one query: all or none of them, in a
 * transaction (a savepoint inside the runner's own); returned rows are concatenated, rows affected
 * summed. `rowChanges(i, result)` reports what statement i changed. Synchronous drivers step through
 * the statements without a promise each.
 */
export function runCompiledStatements<T>(
  runner: QueryRunner,
  statements: readonly CompiledQuery[],
  rowChanges?: (statement: number, result: unknown) => readonly RowChange[] | undefined,
): Promise<T> {
  if (!runner.transaction) throw new UsageError('this query runner cannot run a split query as one write');
  return runner.transaction(async (tx) => {
    const results: unknown[] = [];
    const from = (first: number): unknown => {
      for (let i = first; i < statements.length; i++) {
        const c = statements[i]!;
        const changes = rowChanges && ((result: unknown) => rowChanges(i, result));
        const result = runCompiled(tx, c, c.params, undefined, changes);
        if (result instanceof Promise) {
          return result.then((r) => {
            results.push(r);
            return from(i + 1);
          });
        }
        results.push(result);
      }
      return joinResults(results);
    };
    return from(0) as T;
  });
}

/** One result of several statements' results: their rows in order, or their rows affected summed. */
function joinResults(results: readonly unknown[]): unknown {
  if (Array.isArray(results[0])) return (results as unknown[][]).flat();
  let rowsAffected = 0;
  for (const r of results) rowsAffected += (r as WriteResult).rowsAffected;
  return { rowsAffected } satisfies WriteResult;
}

/**
 * A query compiled once and run many times with new placeholder values: `prepare()` on any builder.
 *
 * @example
 *   const byId = db.select().from(todos).where(eq(todos.id, sql.placeholder('id'))).prepare();
 *   const [todo] = await byId.execute({ id });
 */
export class PreparedQuery<TResult> {
  private readonly name: string;

  constructor(
    private readonly runner: QueryRunner,
    private readonly compiled: CompiledQuery,
  ) {
    this.name = statementName(compiled.sql);
  }

  /** Runs the query with a value for every placeholder. */
  execute(values: Record<string, unknown> = {}): Promise<TResult> {
    try {
      const { compiled } = this;
      let params = compiled.params;
      if (compiled.slots.length > 0) {
        const filled = params.slice();
        for (const slot of compiled.slots) {
          if (!(slot.name in values)) {
            throw new UsageError(`prepared query: no value given for placeholder "${slot.name}"`);
          }
          filled[slot.index] = slot.encode(values[slot.name]);
        }
        params = filled;
      }
      const result = runCompiled(this.runner, compiled, params, this.name);
      return (result instanceof Promise ? result : Promise.resolve(result)) as Promise<TResult>;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The SQL and parameters (placeholders as undefined). */
  toSQL(): { sql: string; params: unknown[] } {
    return { sql: this.compiled.sql, params: [...this.compiled.params] };
  }
}
