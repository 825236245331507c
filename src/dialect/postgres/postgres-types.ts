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

/** How PostgreSQL stores each logical type (docs/design.md section 2). Drivers return int8 and numeric as text. */
export const postgresPhysicalType: (type: ColumnType) => PhysicalType = physicalTypeResolver(
  'postgres',
  {
    uuid: { sqlType: 'UUID', toDriver: checkUuid, fromDriver: identity },
    text: { sqlType: 'TEXT', toDriver: checkString, fromDriver: identity },
    integer: { sqlType: 'INTEGER', toDriver: checkInteger, fromDriver: toNumber },
    bigint: {
      sqlType: 'BIGINT',
      toDriver: (v) => checkBigint(v).toString(),
      fromDriver: (v) => (typeof v === 'bigint' ? v : BigInt(v)),
    },
    real: { sqlType: 'DOUBLE PRECISION', toDriver: checkNumber, fromDriver: toNumber },
    boolean: { sqlType: 'BOOLEAN', toDriver: checkBoolean, fromDriver: (v) => v === true || v === 't' },
    timestamp: {
      sqlType: 'TIMESTAMPTZ',
      toDriver: (v) => checkDate(v).toISOString(),
      fromDriver: (v) => (v instanceof Date ? v : new Date(v)),
    },
    json: {
      sqlType: 'JSONB',
      toDriver: checkJson,
      // node-postgres and PGlite parse json/jsonb themselves: parsing a string again would turn the
      // JSON value "abc" into an error (or "42" into 42).
      fromDriver: identity,
    },
    blob: { sqlType: 'BYTEA', toDriver: checkBytes, fromDriver: toUint8Array },
    numeric: { sqlType: 'NUMERIC', toDriver: checkNumeric, fromDriver: (v) => String(v) },
  },
  (values) => ({ sqlType: 'TEXT', toDriver: checkEnum(values), fromDriver: identity }),
);

/** Values in `sql` templates with no column type. */
export function postgresEncodeUntyped(value: unknown): unknown {
  if (value instanceof Date) return checkDate(value).toISOString();
  if (typeof value === 'bigint') return value.toString();
  return value;
}
