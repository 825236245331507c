import type { AnyColumn } from '../../schema/column.js';
import type { Schema } from '../../schema/schema.js';
import type { ClientColumns } from '../protocol/client-columns.js';
import type { ChangeJson, ServerMessage } from '../protocol/messages.js';
import type { JsonRow } from '../protocol/value-codec.js';

/**
 * Which client schemas a server serves besides its own (`createSyncServer({ clientSchemas })`):
 * `oldestVersion` bounds the window (a client built for an older version is refused; default 1,
 * every version whose columns fit), and `renamedColumns` names columns renamed since older
 * versions, by table: `{ todos: { title: 'text' } }` serves a client that still calls `text`
 * `title`, both ways.
 *
 * @example
 *   createSyncServer({ schema, database, auth, clientSchemas: { oldestVersion: 2, renamedColumns: { todos: { title: 'text' } } } });
 */
export interface ClientSchemaOptions {
  readonly oldestVersion?: number;
  readonly renamedColumns?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/** How many differences a refusal names; the rest are counted (a hello can list thousands). */
const DIFFERENCES_SHOWN = 10;

/** Why a client's schema cannot be served: each difference, in words (the first ten in the message). */
export class ClientSchemaRefusal extends Error {
  constructor(readonly differences: readonly string[]) {
    const more = differences.length - DIFFERENCES_SHOWN;
    super(
      differences.slice(0, DIFFERENCES_SHOWN).join('; ') + (more > 0 ? `; and ${more} more differences` : ''),
    );
  }
}

/** How one table's columns map between a client and the server. */
interface TableMap {
  /** Server column name → client column name, for the columns the client has. */
  readonly toClient: ReadonlyMap<string, string>;
  /** Client column name → server column name. */
  readonly toServer: ReadonlyMap<string, string>;
  /** True when the names are the same and the client has every column: nothing to rewrite. */
  readonly same: boolean;
}

/**
 * A connection's view of the server's tables when its client was built with another schema
 * version: rows going out lose the columns the client does not have and take the names it knows;
 * rows coming in take the server's names (the columns a client does not send keep their value, or
 * their default in an insert). Made by `clientSchemaView`, which refuses what cannot be served.
 */
export class ClientSchemaView {
  constructor(private readonly tables: ReadonlyMap<string, TableMap>) {}

  /** Whether the client has `table` at all (rows of other tables are not sent to it). */
  has(table: string): boolean {
    return this.tables.has(table);
  }

  private rewrite(table: string, row: JsonRow, names: 'toClient' | 'toServer'): JsonRow {
    const map = this.tables.get(table);
    if (!map || map.same) return row;
    const out: JsonRow = {};
    for (const key in row) {
      const name = map[names].get(key);
      if (name !== undefined) out[name] = row[key]!;
      else if (names === 'toServer') out[key] = row[key]!; // unknown: the usual error names it
    }
    return out;
  }

  /** A row of the server's `table` as the client knows it. */
  outgoingRow(table: string, row: JsonRow): JsonRow {
    return this.rewrite(table, row, 'toClient');
  }

  /** A row (or key) of `table` from the client, in the server's names. */
  incomingRow(table: string, row: JsonRow): JsonRow {
    return this.rewrite(table, row, 'toServer');
  }

  /** Changes for the client: tables it lacks left out, columns mapped (an update of none dropped). */
  outgoingChanges(changes: readonly ChangeJson[]): ChangeJson[] {
    const out: ChangeJson[] = [];
    for (const change of changes) {
      if (!this.tables.has(change.table)) continue;
      const mapped: ChangeJson = { ...change, pk: this.outgoingRow(change.table, change.pk) };
      if (change.values) {
        const values = this.outgoingRow(change.table, change.values);
        if (change.op === 'update' && Object.keys(values).length === 0) continue;
        mapped.values = values;
      }
      out.push(mapped);
    }
    return out;
  }

  /** A message for the client with every row in it mapped. */
  outgoing(message: ServerMessage, tableOfShape: (id: string) => string | undefined): ServerMessage {
    switch (message.type) {
      case 'snapshot': {
        const table = tableOfShape(message.shapeId);
        if (!table) return message;
        return { ...message, rows: message.rows.map((row) => this.outgoingRow(table, row)) };
      }
      case 'changes':
        return { ...message, changes: this.outgoingChanges(message.changes) };
      case 'rows':
        return { ...message, rows: message.rows.map((r) => this.outgoingRef(r)) };
      case 'ack':
        return {
          ...message,
          results: message.results.map((result) =>
            'rows' in result && result.rows
              ? { ...result, rows: result.rows.map((r) => this.outgoingRef(r)) }
              : result,
          ),
        };
      default:
        return message;
    }
  }

  private outgoingRef<T extends { table: string; pk: JsonRow; row?: JsonRow | null }>(ref: T): T {
    return {
      ...ref,
      pk: this.outgoingRow(ref.table, ref.pk),
      ...(ref.row ? { row: this.outgoingRow(ref.table, ref.row) } : {}),
    };
  }
}

/**
 * Decides whether a client built with another schema can be served, and how: undefined when its
 * synced tables are the server's exactly (nothing to map), a view otherwise. Throws
 * `ClientSchemaRefusal` naming every difference that would lose data: a table or column the
 * client has that the server dropped (its writes would have nowhere to go), a type that changed, a
 * key column it lacks, and a server column it lacks that an insert could not fill (NOT NULL
 * without a default), or a version older than `oldestVersion`.
 *
 * @example
 *   const view = clientSchemaView(schema, hello.schemaVersion, hello.columns, options);
 */
export function clientSchemaView(
  schema: Schema,
  version: number,
  columns: ClientColumns,
  options: ClientSchemaOptions = {},
): ClientSchemaView | undefined {
  const oldest = options.oldestVersion ?? 1;
  if (version < oldest) {
    throw new ClientSchemaRefusal([
      `the client was built for schema version ${version}, older than the oldest this server serves (${oldest}); update the app`,
    ]);
  }
  const differences: string[] = [];
  const tables = new Map<string, TableMap>();
  let allSame = true;
  for (const [tableName, clientCols] of Object.entries(columns)) {
    const table = schema.tableList.find((t) => t.$name === tableName);
    if (!table) {
      differences.push(`table "${tableName}" is not on the server (dropped or renamed there)`);
      continue;
    }
    const renamed = options.renamedColumns?.[tableName] ?? {};
    const toClient = new Map<string, string>();
    const toServer = new Map<string, string>();
    for (const [name, kind] of Object.entries(clientCols)) {
      const serverName = renamed[name] ?? name;
      const column = table.$columnList.find((c) => c.name === serverName);
      if (!column) {
        differences.push(`column "${tableName}.${name}" is not on the server (dropped there)`);
        continue;
      }
      if (column.type.kind !== kind) {
        differences.push(
          `column "${tableName}.${name}" is ${kind} in the app, ${column.type.kind} on the server`,
        );
        continue;
      }
      toClient.set(serverName, name);
      toServer.set(name, serverName);
    }
    for (const column of table.$columnList) {
      if (toClient.has(column.name)) continue;
      if (column.primaryKey || table.$primaryKeyColumns.includes(column)) {
        differences.push(`key column "${tableName}.${column.name}" is not in the app`);
      } else if (!canFill(column)) {
        differences.push(
          `column "${tableName}.${column.name}" is new, NOT NULL and without a default, so the app's inserts cannot be completed`,
        );
      }
    }
    const same =
      toClient.size === table.$columnList.length &&
      [...toClient].every(([server, client]) => server === client);
    if (!same) allSame = false;
    tables.set(tableName, { toClient, toServer, same });
  }
  // A synced table the client does not have: its rows are not sent to it.
  if (schema.tableList.some((t) => !t.$local && !tables.has(t.$name))) allSame = false;
  if (differences.length > 0) throw new ClientSchemaRefusal(differences);
  return allSame ? undefined : new ClientSchemaView(tables);
}

/** Whether an insert that leaves `column` out still gets a value: nullable, or a default. */
function canFill(column: AnyColumn): boolean {
  return !column.notNull || column.default !== undefined;
}
