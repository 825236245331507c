import { customType } from '../../schema/columns.js';
import { fn } from '../../sql/functions.js';
import type { SQL } from '../../sql/sql.js';

/**
 * PostgreSQL-only column types. On SQLite they are stored as TEXT, so a schema using them still
 * opens there, but the database checks the values only on PostgreSQL.
 *
 * @example
 *   const sessions = table('sessions', { ttl: pgTypes.interval(), ip: pgTypes.inet() });
 */
export const pgTypes = {
  /** A time span as PostgreSQL writes it ('1 day 02:00:00'). */
  interval: customType<{ data: string; driverData: string }>({
    name: 'interval',
    sqlType: { postgres: 'INTERVAL', sqlite: 'TEXT' },
    fromDriver: (v) => (typeof v === 'string' ? v : JSON.stringify(v)),
  }),
  /** An IPv4 or IPv6 host address or network. */
  inet: customType<{ data: string; driverData: string }>({
    name: 'inet',
    sqlType: { postgres: 'INET', sqlite: 'TEXT' },
  }),
};

/** PostgreSQL-only functions. */
export const pgFunctions = {
  /** `gen_random_uuid()`. */
  genRandomUuid(): SQL<string> {
    return fn<string>('gen_random_uuid');
  },
};
