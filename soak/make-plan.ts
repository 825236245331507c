/**
 * Draws a soak plan from a seed: `ops` transactions spread over the clients and the backend, a
 * fault every few of them, flushes and short pauses in between. Rows and values come from small
 * key and name spaces so that writes collide on rows, columns and the unique name.
 */

import type { SoakMutation } from './mutators.js';
import { type FaultKind, itemKey, type OpKind, ownerKey, type Plan, type Step, type Write } from './plan.js';
import { Rng } from './rng.js';
import type { SchemaVariant } from './schema.js';

/**
 * What a plan is drawn for.
 *
 * @example
 *   const plan = makePlan({ seed: 1, clients: 3, ops: 100, opKinds: OP_KINDS, faultKinds: FAULT_KINDS, faultEvery: 8, variant: 'plain' });
 */
export interface PlanOptions {
  readonly seed: number;
  readonly clients: number;
  readonly ops: number;
  readonly opKinds: readonly OpKind[];
  readonly faultKinds: readonly FaultKind[];
  /** About one fault per this many operations (0: none). */
  readonly faultEvery: number;
  readonly variant: SchemaVariant;
}

/**
 * How many owner keys the plans write (six: small, so that writes collide).
 *
 * @example
 *   const last = ownerKey(OWNER_KEYS - 1);
 */
export const OWNER_KEYS = 6;

/**
 * How many item keys the plans write.
 *
 * @example
 *   const last = itemKey(ITEM_KEYS - 1);
 */
export const ITEM_KEYS = 16;
/** Distinct owner names: few, so that the unique name collides. */
const NAMES = 8;

const OP_WEIGHTS: Record<OpKind, number> = {
  insert: 6,
  update: 6,
  'update-multi': 4,
  delete: 2,
  transaction: 3,
  rekey: 1,
  'server-db': 2,
  'raw-sql': 2,
  truncate: 0.15,
  mutator: 2,
};

const FAULT_WEIGHTS: Record<FaultKind, number> = {
  'stop-start': 3,
  'kill-client': 2,
  'kill-server': 1,
  cut: 4,
  stall: 2,
  delay: 2,
  terminate: 1,
  skew: 1,
  away: 1,
};

const BASE_MS = Date.UTC(2026, 0, 1);

/** A value drawn for one column of the soak schema, by SQL name. */
function valueFor(rng: Rng, table: 'owners' | 'items', column: string): unknown {
  switch (`${table}.${column}`) {
    case 'owners.name':
      return `name-${rng.int(0, NAMES - 1)}`;
    case 'owners.order':
    case 'owners.n':
      return rng.int(-1000, 1000);
    case 'owners.created_at':
      return new Date(BASE_MS + rng.int(0, 1e9));
    case 'owners.meta':
      return { v: rng.int(0, 99), tag: rng.pick(['a', 'b', 'é', '"q"']), list: [rng.int(0, 9), null, true] };
    case 'items.owner_id':
      return ownerKey(rng.int(0, OWNER_KEYS - 1));
    case 'items.title':
      return `title ${rng.int(0, 999)}`;
    case 'items.qty': {
      // Beyond 2^53 in both directions, where a double would round.
      const big = 2n ** 53n + BigInt(rng.int(1, 1_000_000)) * 7n;
      return rng.chance(0.3) ? -big : big;
    }
    case 'items.payload':
      return rng.chance(0.2)
        ? null
        : Uint8Array.from({ length: rng.int(0, 6) }, () => (rng.chance(0.3) ? 0 : rng.int(0, 255)));
    case 'items.due_at':
      return rng.chance(0.3) ? null : new Date(BASE_MS + rng.int(0, 1e9));
    case 'items.tags':
      return Array.from({ length: rng.int(0, 3) }, () => rng.pick(['x', 'y', 'z', 'ünï']));
    case 'items.note':
      return rng.chance(0.4) ? null : `note ${rng.int(0, 99)}`;
    case 'items.origin':
    case 'items.stamp':
      return rng.chance(0.3) ? null : `${column}-${rng.int(0, 9)}`;
    case 'items.mutation':
      return rng.chance(0.3) ? null : rng.int(0, 99);
    default:
      throw new Error(`soak: no value for ${table}.${column}`);
  }
}

function columnsOf(table: 'owners' | 'items', variant: SchemaVariant): string[] {
  if (table === 'owners') {
    return ['name', 'order', ...(variant === 'plain' ? [] : ['n']), 'created_at', 'meta'];
  }
  return [
    'owner_id',
    'title',
    'qty',
    'payload',
    'due_at',
    'tags',
    'note',
    ...(variant === 'names' ? ['origin', 'stamp', 'mutation'] : []),
  ];
}

function row(rng: Rng, table: 'owners' | 'items', variant: SchemaVariant): Record<string, unknown> {
  return Object.fromEntries(columnsOf(table, variant).map((c) => [c, valueFor(rng, table, c)]));
}

function someColumns(rng: Rng, table: 'owners' | 'items', variant: SchemaVariant, count: number) {
  const columns = rng.sample(columnsOf(table, variant), count);
  return Object.fromEntries(columns.map((c) => [c, valueFor(rng, table, c)]));
}

function pickTable(rng: Rng): 'owners' | 'items' {
  return rng.chance(0.3) ? 'owners' : 'items';
}

function keyOf(rng: Rng, table: 'owners' | 'items'): string {
  return table === 'owners' ? ownerKey(rng.int(0, OWNER_KEYS - 1)) : itemKey(rng.int(0, ITEM_KEYS - 1));
}

/** One write of `kind` (insert, update, update-multi, delete or rekey). */
function oneWrite(rng: Rng, kind: OpKind, variant: SchemaVariant): Write {
  const table = kind === 'rekey' ? 'items' : pickTable(rng);
  const key = keyOf(rng, table);
  switch (kind) {
    case 'insert':
      return { table, op: 'insert', key, values: row(rng, table, variant) };
    case 'update':
      return { table, op: 'update', key, values: someColumns(rng, table, variant, 1) };
    case 'update-multi':
      return { table, op: 'update', key, values: someColumns(rng, table, variant, rng.int(2, 4)) };
    case 'delete':
      return { table, op: 'delete', key };
    case 'rekey':
      return { table, op: 'rekey', key, newKey: itemKey(rng.int(0, ITEM_KEYS - 1)) };
    default:
      throw new Error(`soak: ${kind} is not a single write`);
  }
}

const SINGLE: readonly OpKind[] = ['insert', 'update', 'update-multi', 'delete', 'rekey'];

function writes(rng: Rng, kinds: readonly OpKind[], variant: SchemaVariant, count: number): Write[] {
  const singles = kinds.filter((k) => SINGLE.includes(k));
  const from = singles.length > 0 ? singles : (['insert', 'update'] as OpKind[]);
  return Array.from({ length: count }, () => oneWrite(rng, rng.pick(from), variant));
}

function fault(rng: Rng, id: number, kind: FaultKind, options: PlanOptions): Step {
  const clients = options.clients;
  const client = rng.int(0, clients - 1);
  switch (kind) {
    case 'stop-start':
      return { id, kind: 'fault', fault: kind, client, ms: rng.int(0, 800) };
    case 'kill-client':
      return {
        id,
        kind: 'fault',
        fault: kind,
        client,
        ms: rng.int(100, 800),
        writes: writes(rng, options.opKinds, options.variant, rng.int(1, 4)),
        killAfterMs: rng.int(0, 8),
      };
    case 'kill-server':
      return { id, kind: 'fault', fault: kind, ms: rng.int(200, 1500) };
    case 'cut':
      return {
        id,
        kind: 'fault',
        fault: kind,
        client,
        ms: 0,
        bytes: rng.int(1, 200),
        toServer: rng.chance(0.5),
      };
    case 'stall':
      return { id, kind: 'fault', fault: kind, client, ms: rng.int(300, 2500) };
    case 'delay':
      return { id, kind: 'fault', fault: kind, client, ms: rng.int(500, 3000) };
    case 'terminate':
      return { id, kind: 'fault', fault: kind, ms: 0 };
    case 'skew':
      return { id, kind: 'fault', fault: kind, client, ms: 0, skewMs: rng.pick([30_000, -30_000, 0]) };
    case 'away':
      return { id, kind: 'fault', fault: kind, client, ms: rng.int(300, 1500) };
  }
}

/**
 * Draws the plan for `options.seed`.
 *
 * @example
 *   const { steps } = makePlan({ seed: 7, clients: 5, ops: 300, opKinds: OP_KINDS, faultKinds: FAULT_KINDS, faultEvery: 10, variant: 'full' });
 */
export function makePlan(options: PlanOptions): Plan {
  const rng = new Rng(options.seed);
  const { variant } = options;
  const steps: Step[] = [];
  let id = 0;
  // Every owner exists at first (a backend seeds them), so that items have parents to point at.
  steps.push({
    id: id++,
    kind: 'write',
    by: options.opKinds.includes('server-db') ? 'server-db' : 'client',
    client: 0,
    writes: Array.from({ length: OWNER_KEYS }, (_, i) => ({
      table: 'owners' as const,
      op: 'insert' as const,
      key: ownerKey(i),
      values: { ...row(rng, 'owners', variant), name: `name-${i}` },
    })),
  });
  const opWeights = Object.fromEntries(options.opKinds.map((k) => [k, OP_WEIGHTS[k]])) as Record<
    OpKind,
    number
  >;
  const faultWeights = Object.fromEntries(options.faultKinds.map((k) => [k, FAULT_WEIGHTS[k]])) as Record<
    FaultKind,
    number
  >;
  for (let op = 0; op < options.ops; op++) {
    const kind = options.opKinds.length > 0 ? rng.weighted(opWeights) : 'insert';
    const client = rng.int(0, options.clients - 1);
    if (kind === 'server-db' || kind === 'raw-sql') {
      steps.push({
        id: id++,
        kind: 'write',
        by: kind,
        writes: writes(rng, options.opKinds, variant, rng.int(1, 3)),
      });
    } else if (kind === 'mutator') {
      const mutation: SoakMutation = rng.chance(0.6)
        ? { name: 'retitle', args: { id: keyOf(rng, 'items'), title: `mutated-${rng.int(0, 999)}` } }
        : { name: 'clearNotes', args: { ownerId: keyOf(rng, 'owners') } };
      steps.push({ id: id++, kind: 'write', by: 'client', client, writes: [], mutation });
    } else if (kind === 'truncate') {
      steps.push({ id: id++, kind: 'write', by: 'raw-sql', writes: [], truncate: true });
    } else if (kind === 'transaction') {
      steps.push({
        id: id++,
        kind: 'write',
        by: 'client',
        client,
        writes: writes(rng, options.opKinds, variant, rng.int(2, 5)),
      });
    } else {
      steps.push({ id: id++, kind: 'write', by: 'client', client, writes: [oneWrite(rng, kind, variant)] });
    }
    if (options.faultEvery > 0 && options.faultKinds.length > 0 && rng.chance(1 / options.faultEvery)) {
      steps.push(fault(rng, id++, rng.weighted(faultWeights), options));
    }
    if (rng.chance(0.15)) steps.push({ id: id++, kind: 'flush', client: rng.int(0, options.clients - 1) });
    if (rng.chance(0.3))
      steps.push({ id: id++, kind: 'pause', ms: rng.chance(0.1) ? rng.int(100, 400) : rng.int(1, 30) });
  }
  return { seed: options.seed, steps };
}
