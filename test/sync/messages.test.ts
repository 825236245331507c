import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { and, eq, localTable, SyncProtocolError, schema, table, text, uuid } from '../../src/index.js';
import { encodeHlc } from '../../src/sync/protocol/hlc.js';
import {
  ChangesSchema,
  type ClientMessage,
  DEFAULT_MESSAGE_LIMITS,
  isWellFormedChangesMessage,
  PROTOCOL_VERSION,
  parseClientMessage,
  parseServerMessage,
  type ServerMessage,
} from '../../src/sync/protocol/messages.js';
import { type ProtocolErrorCode, SyncMessageError } from '../../src/sync/protocol/messages-error.js';
import { comparePositions } from '../../src/sync/protocol/messages-position.js';
import { resolveShape, shapeToJson } from '../../src/sync/protocol/messages-shape.js';

const CLIENT = '9b2f3c1e-6a47-4d1b-8f0e-2c5d7a9e1b34';
const ID = '30000000-0000-4000-8000-000000000001';
const HLC = encodeHlc({ wallMs: 1_700_000_000_000, counter: 3, nodeId: CLIENT });

const change = { table: 'todos', op: 'update', pk: { id: ID }, values: { done: true }, hlc: HLC };
const hello = {
  type: 'hello',
  v: 1,
  clientId: CLIENT,
  schemaVersion: 3,
  token: 'jwt.token.here',
  shapes: [
    { id: 'all-lists', table: 'lists' },
    { id: 'open', table: 'todos', where: { op: 'eq', column: 'done', value: false } },
  ],
  cursor: '41',
};
const push = {
  type: 'push',
  v: 1,
  batches: [
    {
      mutationId: 7,
      changes: [
        { table: 'todos', op: 'insert', pk: { id: ID }, values: { id: ID, title: 'Milk' }, hlc: HLC },
      ],
    },
    { mutationId: 8, changes: [change, { table: 'todos', op: 'delete', pk: { id: ID }, hlc: HLC }] },
  ],
};

/** Parses `raw`, expecting a refusal with `code`; returns the error. */
function refused(parse: () => unknown, code: ProtocolErrorCode): SyncMessageError {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(SyncMessageError);
    expect(error).toBeInstanceOf(SyncProtocolError);
    expect((error as SyncMessageError).code, (error as Error).message).toBe(code);
    return error as SyncMessageError;
  }
  throw new Error(`expected a ${code} error`);
}

/** A parse of `message` as a client would send it, to run later. */
const client =
  (message: unknown, limits = {}) =>
  () =>
    parseClientMessage(JSON.stringify(message), limits);

describe('valid messages round-trip', () => {
  const clientMessages: [string, object][] = [
    ['hello', hello],
    [
      'hello, minimal (no token, no cursor, no shapes)',
      { type: 'hello', v: 1, clientId: CLIENT, schemaVersion: 1, shapes: [] },
    ],
    ['push', push],
    ['ping', { type: 'ping', v: 1 }],
  ];
  it.each(clientMessages)('client: %s', (_name, message) => {
    expect(parseClientMessage(JSON.stringify(message))).toEqual(message);
    expect(parseClientMessage(new TextEncoder().encode(JSON.stringify(message)))).toEqual(message);
  });

  const serverMessages: [string, object][] = [
    ['welcome', { type: 'welcome', v: 1, lastMutationId: 6, limits: DEFAULT_MESSAGE_LIMITS }],
    [
      'snapshot',
      {
        type: 'snapshot',
        v: 1,
        shapeId: 'open',
        position: '41',
        chunk: 0,
        last: false,
        totalRows: 3,
        rows: [{ id: ID, title: 'Milk', done: false, updated_at: 1_700_000_000_000, tags: ['a'] }],
      },
    ],
    [
      'snapshot, empty',
      { type: 'snapshot', v: 1, shapeId: 's', position: '0', chunk: 0, last: true, totalRows: 0, rows: [] },
    ],
    ['changes', { type: 'changes', v: 1, from: '41', to: '43', changes: [change] }],
    ['changes, none in the shapes', { type: 'changes', v: 1, from: '9', to: '10', changes: [] }],
    [
      'ack',
      {
        type: 'ack',
        v: 1,
        results: [
          { mutationId: 7, status: 'applied' },
          {
            mutationId: 8,
            status: 'rejected',
            reason: 'todos: the write rule refused the row',
            rows: [
              { table: 'todos', pk: { id: ID }, row: null },
              { table: 'lists', pk: { id: ID }, row: { id: ID, name: 'A' } },
            ],
          },
        ],
      },
    ],
    ['error', { type: 'error', v: 1, code: 'auth_failed', message: 'token expired', fatal: true }],
    ['pong', { type: 'pong', v: 1 }],
  ];
  it.each(serverMessages)('server: %s', (_name, message) => {
    expect(parseServerMessage(JSON.stringify(message))).toEqual(message);
  });

  it('lower-cases the client id', () => {
    const m = parseClientMessage(JSON.stringify({ ...hello, clientId: CLIENT.toUpperCase() }));
    expect(m.type === 'hello' && m.clientId).toBe(CLIENT);
  });

  it('types narrow by `type`', () => {
    const m = parseClientMessage(JSON.stringify(push));
    expectTypeOf(m).toEqualTypeOf<ClientMessage>();
    if (m.type === 'push')
      expectTypeOf(m.batches[0].changes[0].op).toEqualTypeOf<'insert' | 'update' | 'delete'>();
    const s = parseServerMessage(JSON.stringify({ type: 'pong', v: 1 }));
    expectTypeOf(s).toEqualTypeOf<ServerMessage>();
    expect(PROTOCOL_VERSION).toBe(1);
  });
});

describe('malformed JSON', () => {
  it('text that is not JSON', () => {
    const e = refused(() => parseClientMessage('{"type": "ping", '), 'malformed_json');
    expect(e.message).toMatch(/^message is not valid JSON: /);
  });

  it('bytes that are not UTF-8', () => {
    const e = refused(() => parseClientMessage(new Uint8Array([0x7b, 0xff, 0x7d])), 'malformed_json');
    expect(e.message).toMatch(/not valid UTF-8/);
  });

  it('a frame that is neither text nor bytes', () => {
    refused(() => parseClientMessage(42 as unknown as string), 'malformed_json');
  });

  it('JSON that is not an object', () => {
    for (const raw of ['[1]', '"ping"', 'null', '3']) {
      const e = refused(() => parseClientMessage(raw), 'invalid_message');
      expect(e.message).toMatch(/a message must be a JSON object with "type" and "v"/);
    }
  });
});

describe('unknown type and wrong version', () => {
  it('an unknown type lists the known ones', () => {
    const e = refused(client({ type: 'teleport', v: 1 }), 'unknown_type');
    expect(e.message).toBe(
      'unknown client message type "teleport"; expected one of hello, push, ping, fetch, subscribe, unsubscribe',
    );
  });

  it("a message of the other side's kind says so", () => {
    const e = refused(client({ type: 'ack', v: 1, results: [] }), 'unknown_type');
    expect(e.message).toMatch(/"ack" is a message the server sends, not one it receives/);
    const s = refused(() => parseServerMessage(JSON.stringify(hello)), 'unknown_type');
    expect(s.message).toMatch(/unknown server message type "hello" \("hello" is a message the client sends/);
  });

  it('names and keys from the message are cut short, never echoed whole', () => {
    const huge = 'x'.repeat(100_000);
    const type = refused(client({ type: huge, v: 1 }), 'unknown_type');
    expect(type.message).toMatch(
      /^unknown client message type "x{40}"… \(100000 characters\); expected one of/,
    );
    const key = refused(client({ type: 'ping', v: 1, [huge]: 1 }), 'invalid_message');
    expect(key.message).toBe(
      `invalid ping message: (message): unknown field "${'x'.repeat(40)}"… (100000 characters)`,
    );
    const column = refused(
      client({
        type: 'push',
        v: 1,
        batches: [{ mutationId: 1, changes: [{ ...change, pk: { [huge]: 1 }, values: 5 }] }],
      }),
      'invalid_message',
    );
    expect(column.message.length).toBeLessThan(300);
  });

  it('inherited property names are not types', () => {
    refused(client({ type: 'toString', v: 1 }), 'unknown_type');
    refused(client({ type: '__proto__', v: 1 }), 'unknown_type');
  });

  it('a missing or non-string type', () => {
    expect(refused(client({ v: 1 }), 'invalid_message').message).toBe('type: missing (the message type)');
    expect(refused(client({ v: 1, type: 3 }), 'invalid_message').message).toBe(
      'type: expected a string, got 3',
    );
  });

  it('a newer or older version says which side to update', () => {
    const newer = refused(client({ ...hello, v: 2 }), 'version_mismatch');
    expect(newer.message).toBe(
      'protocol version 2 is not supported: this server speaks version 1; update the server so both speak the same version',
    );
    const older = refused(client({ type: 'ping', v: 0 }), 'version_mismatch');
    expect(older.message).toMatch(/update the client/);
    const fromServer = refused(() => parseServerMessage('{"type":"pong","v":2}'), 'version_mismatch');
    expect(fromServer.message).toMatch(/this client speaks version 1; update the client/);
  });

  it('the version is checked before the type', () => {
    refused(client({ type: 'brand-new', v: 2 }), 'version_mismatch');
  });

  it('a missing or non-numeric version is an invalid message', () => {
    expect(refused(client({ type: 'ping' }), 'invalid_message').message).toMatch(/^v: missing/);
    expect(refused(client({ type: 'ping', v: '1' }), 'invalid_message').message).toBe(
      'v: expected the protocol version as a number, got "1"',
    );
  });
});

describe('invalid messages name the field and the expectation', () => {
  const cases: [string, object, string][] = [
    [
      'missing clientId',
      { ...hello, clientId: undefined },
      'invalid hello message: clientId: missing (expected string)',
    ],
    [
      'clientId not a uuid',
      { ...hello, clientId: 'abc' },
      'invalid hello message: clientId: expected a uuid',
    ],
    ['extra field', { ...hello, colour: 'red' }, 'invalid hello message: (message): unknown field "colour"'],
    [
      'schemaVersion a string',
      { ...hello, schemaVersion: '3' },
      'invalid hello message: schemaVersion: expected number, received string',
    ],
    [
      'schemaVersion 0',
      { ...hello, schemaVersion: 0 },
      'invalid hello message: schemaVersion: Too small: expected number to be >=1',
    ],
    [
      'empty token',
      { ...hello, token: '' },
      'invalid hello message: token: cannot be empty; leave token out instead',
    ],
    [
      'cursor a number',
      { ...hello, cursor: 41 },
      'invalid hello message: cursor: expected string, received number',
    ],
    [
      'cursor with leading zeros',
      { ...hello, cursor: '041' },
      'invalid hello message: cursor: expected a position: a whole number from 0 to 2^63 - 1 as a decimal string without leading zeros, like "41"',
    ],
    [
      'cursor past 2^63 - 1',
      { ...hello, cursor: '9223372036854775808' },
      'invalid hello message: cursor: expected a position: a whole number from 0 to 2^63 - 1 as a decimal string without leading zeros, like "41"',
    ],
    [
      'shape ids used twice',
      { ...hello, shapes: [hello.shapes[0], { ...hello.shapes[1], id: 'all-lists' }] },
      'invalid hello message: shapes[1].id: shape id "all-lists" is used twice',
    ],
    [
      'shape filter with an unknown operator',
      { ...hello, shapes: [{ id: 's', table: 'todos', where: { op: 'matches', column: 'title' } }] },
      'invalid hello message: shapes[0].where.op: unknown filter operator; expected one of eq, ne, gt, gte, lt, lte, inArray, notInArray, exists, notExists, isNull, isNotNull, between, notBetween, like, notLike, ilike, notIlike, and, or, not',
    ],
    [
      'shape filter as SQL text',
      { ...hello, shapes: [{ id: 's', table: 'todos', where: 'done = false' }] },
      'invalid hello message: shapes[0].where: expected object, received string',
    ],
    [
      'no batches',
      { type: 'push', v: 1, batches: [] },
      'invalid push message: batches: a push holds at least one batch',
    ],
    [
      'missing mutationId',
      { type: 'push', v: 1, batches: [{ changes: [change] }] },
      'invalid push message: batches[0].mutationId: missing (expected number)',
    ],
    [
      'mutation ids not increasing',
      {
        type: 'push',
        v: 1,
        batches: [
          { mutationId: 8, changes: [change] },
          { mutationId: 8, changes: [change] },
        ],
      },
      'invalid push message: batches[1].mutationId: mutation ids must increase; 8 follows 8',
    ],
    [
      'unknown op',
      { type: 'push', v: 1, batches: [{ mutationId: 1, changes: [{ ...change, op: 'upsert' }] }] },
      'invalid push message: batches[0].changes[0].op: Invalid option: expected one of "insert"|"update"|"delete"',
    ],
    [
      'delete with values',
      { type: 'push', v: 1, batches: [{ mutationId: 1, changes: [{ ...change, op: 'delete' }] }] },
      'invalid push message: batches[0].changes[0].values: a delete carries no values',
    ],
    [
      'update without values',
      { type: 'push', v: 1, batches: [{ mutationId: 1, changes: [{ ...change, values: undefined }] }] },
      'invalid push message: batches[0].changes[0].values: missing (an update carries its values)',
    ],
    [
      'empty primary key',
      { type: 'push', v: 1, batches: [{ mutationId: 1, changes: [{ ...change, pk: {} }] }] },
      'invalid push message: batches[0].changes[0].pk: a primary key needs at least one column',
    ],
    [
      'bad hlc',
      { type: 'push', v: 1, batches: [{ mutationId: 1, changes: [{ ...change, hlc: 'yesterday' }] }] },
      'invalid push message: batches[0].changes[0].hlc: expected an HLC stamp made by encodeHlc: 13 digits of wall ms, "-", 5 hex digits of counter, "-", a node id',
    ],
    [
      'extra field in a change, with a key that needs quoting',
      { type: 'push', v: 1, batches: [{ mutationId: 1, changes: [{ ...change, 'the row': {} }] }] },
      'invalid push message: batches[0].changes[0]: unknown field "the row"',
    ],
    [
      'ping with a body',
      { type: 'ping', v: 1, at: 5 },
      'invalid ping message: (message): unknown field "at"',
    ],
  ];
  it.each(cases)('%s', (_name, message, expected) => {
    const e = refused(client(message), 'invalid_message');
    expect(e.message).toBe(expected);
  });

  it('reports at most five problems, and counts the rest', () => {
    const changes = Array.from({ length: 8 }, () => ({ ...change, op: 'upsert' }));
    const e = refused(
      client({ type: 'push', v: 1, batches: [{ mutationId: 1, changes }] }),
      'invalid_message',
    );
    expect(e.message.match(/Invalid option/g)).toHaveLength(5);
    expect(e.message).toMatch(/; and 3 more problems$/);
    expect(e.path).toBe('batches[0].changes[0].op');
  });

  it('server messages are checked the same way', () => {
    const backwards = refused(
      () => parseServerMessage(JSON.stringify({ type: 'changes', v: 1, from: '10', to: '9', changes: [] })),
      'invalid_message',
    );
    expect(backwards.message).toBe('invalid changes message: to: to comes before from');
    const noReason = refused(
      () =>
        parseServerMessage(
          JSON.stringify({ type: 'ack', v: 1, results: [{ mutationId: 1, status: 'rejected', rows: [] }] }),
        ),
      'invalid_message',
    );
    expect(noReason.message).toBe('invalid ack message: results[0].reason: missing (expected string)');
    const badStatus = refused(
      () =>
        parseServerMessage(JSON.stringify({ type: 'ack', v: 1, results: [{ mutationId: 1, status: 'ok' }] })),
      'invalid_message',
    );
    expect(badStatus.message).toBe(
      'invalid ack message: results[0].status: unknown "status" value; expected one of applied, rejected',
    );
  });
});

describe('changes messages checked without the schema', () => {
  /** Mostly a good value, sometimes one of the bad ones (undefined: the field is left out). */
  const mostly = (good: unknown[], bad: unknown[]) =>
    fc.oneof(
      { arbitrary: fc.constantFrom(...good), weight: 20 },
      { arbitrary: fc.constantFrom(...bad), weight: 1 },
    );
  const changeArb = fc
    .record({
      table: mostly(['todos', 't'.repeat(128)], ['', 't'.repeat(129), 5, undefined]),
      op: mostly(['insert', 'update', 'delete'], ['upsert', null, undefined]),
      pk: mostly([{ id: ID }, { id: ID, n: 2 }], [{}, { '': 1 }, [ID], null, 'id', undefined]),
      values: mostly([{ done: true }, {}, undefined], [{ '': 1 }, [true], null, 7]),
      hlc: mostly(
        [HLC, encodeHlc({ wallMs: 1, counter: 0, nodeId: 'server' })],
        [`${HLC}x`, 'c', 12, undefined],
      ),
      extra: mostly([undefined], [1]),
      valuesFitOp: fc.boolean(),
    })
    // Half the time the values are what the op carries, so most such changes are well formed.
    .map(({ valuesFitOp, ...change }) =>
      valuesFitOp && change.values !== undefined
        ? { ...change, values: change.op === 'delete' ? undefined : { done: true } }
        : change,
    );
  const messageArb = fc.record({
    type: mostly(['changes'], ['ack', undefined]),
    v: mostly([1], [2, '1', undefined]),
    from: mostly(['0', '41'], ['041', 41, '9223372036854775808', undefined]),
    to: mostly(['41', '9223372036854775807'], ['-1', '40', undefined]),
    changes: fc.oneof({ arbitrary: fc.array(changeArb, { maxLength: 3 }), weight: 6 }, fc.constant({})),
    more: mostly([undefined], [true]),
  });

  it('accepts exactly what the schema accepts, as the schema would give it back', () => {
    let accepted = 0;
    fc.assert(
      fc.property(messageArb, (built) => {
        // As it arrives: parsed JSON, so no undefined values.
        const message = JSON.parse(JSON.stringify(built));
        const parsed = ChangesSchema.safeParse(message);
        expect(isWellFormedChangesMessage(message)).toBe(parsed.success);
        if (parsed.success) {
          expect(parsed.data).toEqual(message);
          accepted += message.changes.length;
        }
      }),
      { numRuns: 3000 },
    );
    // Enough well-formed changes went through for the equality to mean something.
    expect(accepted).toBeGreaterThan(500);
  });

  it('takes a well-formed message as it is', () => {
    const message = {
      type: 'changes',
      v: 1,
      from: '40',
      to: '42',
      changes: [change, { ...change, op: 'delete', values: undefined }],
    };
    const wire = JSON.stringify(message);
    expect(isWellFormedChangesMessage(JSON.parse(wire))).toBe(true);
    expect(parseServerMessage(wire)).toEqual(JSON.parse(wire));
  });
});

describe('limits', () => {
  it('a message over maxMessageBytes is refused before parsing, without echoing it', () => {
    const big = JSON.stringify({ ...hello, token: 'x'.repeat(2000) });
    const e = refused(() => parseClientMessage(`${big}{{{ not json`, { maxMessageBytes: 1000 }), 'too_large');
    expect(e.message).toMatch(
      /^message is at least \d+ bytes, over the limit of 1000 bytes \(maxMessageBytes\)/,
    );
    expect(e.message).not.toMatch(/xxxx/);
  });

  it('counts UTF-8 bytes, not characters', () => {
    const euros = JSON.stringify({ ...hello, token: '€'.repeat(400) }); // ~1,450 bytes, ~650 characters
    const e = refused(() => parseClientMessage(euros, { maxMessageBytes: 1000 }), 'too_large');
    expect(e.message).toMatch(/^message is \d{4} bytes, over the limit of 1000 bytes/);
    expect(parseClientMessage(euros, { maxMessageBytes: 2000 }).type).toBe('hello');
    const bytes = new TextEncoder().encode(euros);
    refused(() => parseClientMessage(bytes, { maxMessageBytes: 1000 }), 'too_large');
  });

  it('too many shapes', () => {
    const shapes = Array.from({ length: 5 }, (_, i) => ({ id: `s${i}`, table: 'todos' }));
    const e = refused(client({ ...hello, shapes }, { maxShapes: 4 }), 'too_large');
    expect(e.message).toBe('shapes: 5 shapes, over the limit of 4 (maxShapes)');
  });

  it('too many batches', () => {
    const batches = Array.from({ length: 3 }, (_, i) => ({ mutationId: i + 1, changes: [change] }));
    const e = refused(client({ type: 'push', v: 1, batches }, { maxBatches: 2 }), 'too_large');
    expect(e.message).toBe('batches: 3 batches, over the limit of 2 (maxBatches)');
  });

  it('too many changes in one batch', () => {
    const batches = [
      { mutationId: 1, changes: [change] },
      { mutationId: 2, changes: [change, change, change] },
    ];
    const e = refused(client({ type: 'push', v: 1, batches }, { maxChangesPerBatch: 2 }), 'too_large');
    expect(e.message).toBe('batches[1].changes: 3 changes, over the limit of 2 (maxChangesPerBatch)');
    expect(e.path).toBe('batches[1].changes');
  });

  it('nesting deeper than maxDepth, even far past what a stack could recurse', () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const raw = `{"type":"push","v":1,"batches":[{"mutationId":1,"changes":[{"table":"t","op":"insert","pk":{"id":1},"values":{"tags":${deep}},"hlc":"${HLC}"}]}]}`;
    const e = refused(() => parseClientMessage(raw, { maxMessageBytes: 1 << 20 }), 'too_large');
    expect(e.message).toBe('message nests arrays and objects deeper than 64 levels (the maxDepth limit)');
    const filter = { ...hello, shapes: [{ id: 's', table: 'todos', where: nestNot(100) }] };
    refused(client(filter), 'too_large');
  });
});

function nestNot(depth: number): object {
  let node: object = { op: 'isNull', column: 'note' };
  for (let i = 0; i < depth; i++) node = { op: 'not', arg: node };
  return node;
}

describe('shapes against the schema', () => {
  const lists = table('lists', { id: uuid().primaryKey(), ownerId: text('owner_id').notNull() });
  const todos = table('todos', { id: uuid().primaryKey(), listId: uuid('list_id'), title: text() });
  const drafts = localTable('drafts', { id: uuid().primaryKey() });
  const appSchema = schema({ lists, todos, drafts });

  it('shapeToJson and resolveShape meet in the middle', () => {
    const where = and(eq(todos.listId, ID), eq(todos.title, 'Milk'))!;
    const shape = shapeToJson('list-1', todos, where);
    const message = parseClientMessage(
      JSON.stringify({ ...hello, shapes: [shape, shapeToJson('all', lists)] }),
    );
    if (message.type !== 'hello') throw new Error('expected a hello');
    const resolved = message.shapes.map((s, i) => resolveShape(s, appSchema, i));
    expect(resolved[0].table).toBe(todos);
    expect(resolved[0].where?.node).toEqual(where.node);
    expect(resolved[1]).toEqual({ id: 'all', table: lists, where: undefined });
  });

  it('an unknown table names it and the synced tables', () => {
    const e = refused(() => resolveShape({ id: 's', table: 'notes' }, appSchema, 2), 'unknown_table');
    expect(e.message).toBe(
      'shapes[2].table: table "notes" is not in the schema; the synced tables are lists, todos',
    );
  });

  it('a local table never syncs', () => {
    const e = refused(() => resolveShape({ id: 's', table: 'drafts' }, appSchema), 'unknown_table');
    expect(e.message).toMatch(/table "drafts" is a local table, which never syncs/);
  });

  it('an unknown column in a filter names the shape, the table and the column', () => {
    const e = refused(
      () =>
        resolveShape(
          { id: 's', table: 'lists', where: { op: 'eq', column: 'owner', value: 'u1' } },
          appSchema,
          1,
        ),
      'unknown_column',
    );
    expect(e.message).toMatch(
      /^shapes\[1\]\.where\.column: table "lists" has no column "owner"; its columns are id, owner_id/,
    );
  });
});

describe('positions', () => {
  it('compare as whole numbers', () => {
    expect(comparePositions('9', '10')).toBe(-1);
    expect(comparePositions('10', '10')).toBe(0);
    expect(comparePositions('9223372036854775807', '9223372036854775806')).toBe(1);
  });
});

describe('rows in messages', () => {
  const snapshot = (rows: unknown) =>
    JSON.stringify({
      type: 'snapshot',
      v: 1,
      shapeId: 's',
      position: '1',
      chunk: 0,
      last: true,
      totalRows: 1,
      rows,
    });

  it('accepts rows of JSON values, as parsed, without copying them', () => {
    const parsed = parseServerMessage(snapshot([{ id: 'a', tags: ['x'], meta: { n: 1 }, gone: null }]));
    expect(parsed.type === 'snapshot' && parsed.rows).toEqual([
      { id: 'a', tags: ['x'], meta: { n: 1 }, gone: null },
    ]);
  });

  it.each([
    [['not', 'a row'], 'rows[0]: expected object, received array'],
    ['text', 'rows[0]: expected object, received string'],
    [null, 'rows[0]: expected object, received null'],
    [{ '': 1 }, 'rows[0]: column names cannot be empty'],
  ])('refuses the row %j, saying why', (row, message) => {
    expect(() => parseServerMessage(snapshot([row]))).toThrow(message);
  });
});
