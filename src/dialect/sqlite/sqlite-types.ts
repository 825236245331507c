import type { ColumnType, PhysicalType } from '../../schema/column-type.js';
import { physicalTypeResolver } from '../dialect.js';
import {
  checkBigint,
  checkBoolean,
  checkBytes,
  checkDate,
  checkEnum,
  checkInteger,
  checkJson,
  checkNumber,
  checkNumeric,
  checkString,
  checkUuid,
  toUint8Array,
} from '../value-checks.js';

const identity = (value: unknown) => value;
const toNumber = (value: unknown) => (typeof value === 'number' ? value : Number(value));

/** How SQLite stores each logical type (docs/design.md section 2). */
export const sqlitePhysicalType: (type: ColumnType) => PhysicalType = physicalTypeResolver(
  'sqlite',
  {
    uuid: { sqlType: 'TEXT', toDriver: checkUuid, fromDriver: identity },
    text: { sqlType: 'TEXT', toDriver: checkString, fromDriver: identity },
    integer: { sqlType: 'INTEGER', toDriver: checkInteger, fromDriver: toNumber },
    bigint: {
      sqlType: 'INTEGER',
      toDriver: checkBigint,
      fromDriver: (v) => (typeof v === 'bigint' ? v : BigInt(v)),
      needsBigInt: true,
    },
    real: { sqlType: 'REAL', toDriver: checkNumber, fromDriver: toNumber },
    boolean: {
      sqlType: 'INTEGER',
      toDriver: (v) => (checkBoolean(v) ? 1 : 0),
      fromDriver: (v) => Number(v) !== 0,
    },
    timestamp: {
      sqlType: 'INTEGER',
      toDriver: (v) => checkDate(v).getTime(),
      fromDriver: (v) => new Date(typeof v === 'number' ? v : Number(v)),
    },
    json: { sqlType: 'TEXT', toDriver: checkJson, fromDriver: (v) => JSON.parse(v) },
    blob: { sqlType: 'BLOB', toDriver: checkBytes, fromDriver: toUint8Array },
    numeric: { sqlType: 'TEXT', toDriver: checkNumeric, fromDriver: (v) => String(v) },
  },
  (values) => ({ sqlType: 'TEXT', toDriver: checkEnum(values), fromDriver: identity }),
);

/** Values in `sql` templates with no column type: stored the way the typed columns store them. */
export function sqliteEncodeUntyped(value: unknown): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return checkDate(value).getTime();
  if (value instanceof Uint8Array || typeof value !== 'object' || value === null) return value;
  return checkJson(value);
}
