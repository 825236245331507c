import { Component, type ReactNode, StrictMode, Suspense, useState, useTransition } from 'react';
import { afterEach, beforeEach, expect, expectTypeOf, it, onTestFinished, vi } from 'vitest';
import { type RenderResult, render } from 'vitest-browser-react';
import { sqliteWasm } from '../../src/drivers/sqlite-wasm/index.js';
import { type Database, eq, is, openDatabase, table, text, UsageError } from '../../src/index.js';
import {
  MissingProviderError,
  SynclineProvider,
  useDatabase,
  useLiveQuery,
  useSuspenseLiveQuery,
  useSyncClient,
  useSyncProgress,
  useSyncStatus,
} from '../../src/react/index.js';
import { browserSyncSchema, notes } from './browser-sync-schema.js';

// The hooks of syncline/react on SQLite WASM in Chromium (its worker answers every statement
// asynchronously, as in an app): each test opens a database of its own, in memory.
let db: Database<typeof browserSyncSchema>;

beforeEach(async () => {
  db = await openDatabase(browserSyncSchema, sqliteWasm());
});

afterEach(async () => {
  await db.close();
});

const id = (n: number) => `30000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;

/** The live queries the database runs now (its registry of shared live sources). */
const liveQueries = () => (db as unknown as { liveSources: Map<string, unknown> }).liveSources.size;

/** The notes' bodies, in order: the query most tests watch. */
const bodies = (pinned?: boolean) =>
  db
    .select({ body: notes.body })
    .from(notes)
    .where(pinned === undefined ? undefined : eq(notes.pinned, pinned))
    .orderBy(notes.body);

/** Polls `check` every 10 ms until it holds, for at most 5 s. */
async function until(check: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Shows what a live query hook returned, and counts its renders. */
function NoteList({ pinned, onRender }: { pinned?: boolean; onRender?: () => void }) {
  const { data, error, status } = useLiveQuery(bodies(pinned));
  expectTypeOf(data).toEqualTypeOf<{ body: string }[] | undefined>();
  onRender?.();
  return (
    <div data-testid="list" data-status={status}>
      {error ? <p>failed: {String(error)}</p> : null}
      <ul>
        {data?.map((note) => (
          <li key={note.body}>{note.body}</li>
        ))}
      </ul>
    </div>
  );
}

/** Writes a note 'beta', waits for `shown`, and checks that one live query runs until the unmount. */
async function followsWritesUntilUnmount(screen: RenderResult, shown: string): Promise<void> {
  await db.insert(notes).values({ id: id(2), body: 'beta' });
  await expect.element(screen.getByText(shown)).toBeInTheDocument();
  expect(liveQueries()).toBe(1);
  await screen.unmount();
  expect(liveQueries()).toBe(0);
}

/** React logs each error a boundary catches: the expected ones stay out of the test output. */
function quietReactErrors(): void {
  const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
  onTestFinished(() => spy.mockRestore());
}

/** Catches what its children throw, and shows the message. */
class Catch extends Component<
  { children: ReactNode; onError?: (error: unknown) => void },
  { error?: unknown }
> {
  override state: { error?: unknown } = {};
  static getDerivedStateFromError(error: unknown) {
    return { error };
  }
  override componentDidCatch(error: unknown) {
    this.props.onError?.(error);
  }
  override render() {
    return this.state.error ? <p>caught: {(this.state.error as Error).message}</p> : this.props.children;
  }
}

it('shows the rows on mount, typed from the query, and re-renders after a write changes them', async () => {
  await db.insert(notes).values({ id: id(1), body: 'alpha' });
  const screen = await render(<NoteList />);
  await expect.element(screen.getByText('alpha')).toBeInTheDocument();
  await expect.element(screen.getByTestId('list')).toHaveAttribute('data-status', 'ready');

  await db.insert(notes).values({ id: id(2), body: 'beta' });
  await expect.element(screen.getByText('beta')).toBeInTheDocument();
  await db.delete(notes).where(eq(notes.id, id(1)));
  await expect.element(screen.getByText('alpha')).not.toBeInTheDocument();
  expect(screen.getByRole('listitem').all()).toHaveLength(1);
});

it('re-renders only when the result changes', async () => {
  await db.insert(notes).values({ id: id(1), body: 'alpha' });
  let renders = 0;
  const screen = await render(<NoteList onRender={() => renders++} />);
  await expect.element(screen.getByText('alpha')).toBeInTheDocument();
  const afterMount = renders;

  // The query reads only bodies: a change of `pinned` re-runs it, to the same rows.
  const live = bodies().watch();
  const runs = live.runCount;
  await db
    .update(notes)
    .set({ pinned: true })
    .where(eq(notes.id, id(1)));
  await until(() => live.runCount > runs, 'the live query to run again');
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(renders, 'an unchanged result renders nothing').toBe(afterMount);

  await db.insert(notes).values({ id: id(2), body: 'beta' });
  await expect.element(screen.getByText('beta')).toBeInTheDocument();
  expect(renders, 'one changed result, one render').toBe(afterMount + 1);
});

it('unsubscribes on unmount: no live query is left and writes run nothing more', async () => {
  await db.insert(notes).values({ id: id(1), body: 'alpha' });
  const screen = await render(<NoteList />);
  await expect.element(screen.getByText('alpha')).toBeInTheDocument();
  expect(liveQueries()).toBe(1);
  const live = bodies().watch();
  expect(live.runCount).toBeGreaterThan(0);

  await screen.unmount();
  expect(liveQueries()).toBe(0);
  await db.insert(notes).values({ id: id(2), body: 'beta' });
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(live.runCount, 'no live source runs the query any more').toBe(0);
});

it('under StrictMode, its double mount leaves one live query and its unmount none', async () => {
  await db.insert(notes).values({ id: id(1), body: 'alpha' });
  const screen = await render(
    <StrictMode>
      <NoteList />
      <NoteList pinned={false} />
    </StrictMode>,
  );
  await expect.element(screen.getByText('alpha').first()).toBeInTheDocument();
  expect(screen.getByText('alpha').all()).toHaveLength(2);
  expect(liveQueries()).toBe(2);

  await db.insert(notes).values({ id: id(2), body: 'beta' });
  await expect.poll(() => screen.getByText('beta').all().length).toBe(2);
  expect(liveQueries()).toBe(2);

  await screen.unmount();
  expect(liveQueries()).toBe(0);
});

it('a new query (other parameters) closes the old live query; a new object for the same query keeps it', async () => {
  await db.insert(notes).values([
    { id: id(1), body: 'pinned note', pinned: true },
    { id: id(2), body: 'loose note' },
  ]);
  const screen = await render(<NoteList pinned={false} />);
  await expect.element(screen.getByText('loose note')).toBeInTheDocument();
  await db.insert(notes).values({ id: id(3), body: 'another loose note' });
  await expect.element(screen.getByText('another loose note')).toBeInTheDocument();
  const loose = bodies(false).watch();
  const runs = loose.runCount;
  expect(runs).toBeGreaterThanOrEqual(2);

  // Each render builds a new query object: the same SQL and parameters keep the live query.
  await screen.rerender(<NoteList pinned={false} />);
  expect(loose.runCount, 'not subscribed again').toBe(runs);

  await screen.rerender(<NoteList pinned={true} />);
  await expect.element(screen.getByText('pinned note')).toBeInTheDocument();
  expect(screen.getByText('loose note').query()).toBeNull();
  expect(loose.runCount, 'the old live query is closed').toBe(0);
  expect(liveQueries()).toBe(1);
});

it('with deps, makes the query from the provider again when they change, in a transition too', async () => {
  await db.insert(notes).values([
    { id: id(1), body: 'pinned note', pinned: true },
    { id: id(2), body: 'loose note' },
  ]);
  let made = 0;
  function Switcher() {
    const [pinned, setPinned] = useState(false);
    const [pending, startTransition] = useTransition();
    const { data } = useLiveQuery(
      (db) => {
        made++;
        return db.select({ body: notes.body }).from(notes).where(eq(notes.pinned, pinned));
      },
      [pinned],
    );
    return (
      <>
        <button type="button" onClick={() => startTransition(() => setPinned((p) => !p))}>
          switch
        </button>
        <p>{pending ? 'switching' : data?.map((n) => n.body).join(', ')}</p>
      </>
    );
  }
  const screen = await render(
    <SynclineProvider db={db}>
      <Switcher />
    </SynclineProvider>,
  );
  await expect.element(screen.getByText('loose note')).toBeInTheDocument();
  const madeAtFirst = made;
  await db.insert(notes).values({ id: id(3), body: 'z' });
  await expect.element(screen.getByText('loose note, z')).toBeInTheDocument();
  expect(made, 'unchanged deps make no new query').toBe(madeAtFirst);

  await screen.getByRole('button').click();
  await expect.element(screen.getByText('pinned note')).toBeInTheDocument();
  expect(made).toBeGreaterThan(madeAtFirst);
  expect(bodies(false).watch().runCount, 'the old live query is closed').toBe(0);
  expect(liveQueries()).toBe(1);
  await screen.unmount();
  expect(liveQueries()).toBe(0);
});

it('reports a failed run as status "error" with the error', async () => {
  // A table the database does not have: the query compiles and fails when it runs.
  const missing = table('missing_notes', { body: text().notNull() });
  function Failing() {
    const { data, error, status } = useLiveQuery(db.select().from(missing));
    return (
      <p data-status={status}>{error ? `error: ${(error as Error).message}` : `rows: ${data?.length}`}</p>
    );
  }
  const screen = await render(<Failing />);
  await expect.element(screen.getByText(/^error: .*missing_notes/)).toBeInTheDocument();
  await expect.element(screen.getByText(/^error/)).toHaveAttribute('data-status', 'error');
});

it('suspends until the first result, then shows the rows and follows writes', async () => {
  await db.insert(notes).values({ id: id(1), body: 'alpha' });
  function SuspendedNotes() {
    const rows = useSuspenseLiveQuery((db) =>
      db.select({ body: notes.body }).from(notes).orderBy(notes.body),
    );
    expectTypeOf(rows).toEqualTypeOf<{ body: string }[]>();
    return (
      <ul>
        {rows.map((note) => (
          <li key={note.body}>{note.body}</li>
        ))}
      </ul>
    );
  }
  // A transaction holds the page's one connection: the first run waits for it to end.
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let inTransaction!: () => void;
  const started = new Promise<void>((resolve) => (inTransaction = resolve));
  const transaction = db.transaction(async () => {
    inTransaction();
    await held;
  });
  await started;

  const screen = await render(
    <SynclineProvider db={db}>
      <Suspense fallback={<p>loading notes</p>}>
        <SuspendedNotes />
      </Suspense>
    </SynclineProvider>,
  );
  await expect.element(screen.getByText('loading notes')).toBeInTheDocument();
  await new Promise((resolve) => setTimeout(resolve, 50));
  await expect.element(screen.getByText('loading notes')).toBeInTheDocument();
  release();
  await transaction;
  await expect.element(screen.getByText('alpha')).toBeInTheDocument();
  expect(screen.getByText('loading notes').query()).toBeNull();

  // The mounted component took the live query over from the suspended render: unmounting ends it.
  await followsWritesUntilUnmount(screen, 'beta');
});

it('suspends under StrictMode too, and leaves no live query after unmount', async () => {
  await db.insert(notes).values({ id: id(1), body: 'alpha' });
  let renders = 0;
  function SuspendedNotes() {
    const rows = useSuspenseLiveQuery(bodies());
    renders++;
    return <p>{rows.map((note) => note.body).join(', ')}</p>;
  }
  const screen = await render(
    <StrictMode>
      <Suspense fallback={<p>loading notes</p>}>
        <SuspendedNotes />
      </Suspense>
    </StrictMode>,
  );
  await expect.element(screen.getByText('alpha')).toBeInTheDocument();
  // StrictMode's second mount subscribes again, and that run finds the rows shown: no render.
  const shown = renders;
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(renders).toBe(shown);
  await followsWritesUntilUnmount(screen, 'alpha, beta');
});

it('throws a failed first run of a suspending query to the error boundary', async () => {
  quietReactErrors();
  const missing = table('missing_notes', { body: text().notNull() });
  function SuspendedMissing() {
    const rows = useSuspenseLiveQuery(db.select().from(missing));
    return <p>rows: {rows.length}</p>;
  }
  const screen = await render(
    <Catch>
      <Suspense fallback={<p>loading</p>}>
        <SuspendedMissing />
      </Suspense>
    </Catch>,
  );
  await expect.element(screen.getByText(/^caught: .*missing_notes/)).toBeInTheDocument();
});

it('outside its provider, a hook throws an error naming the hook and the provider', async () => {
  quietReactErrors();
  const errors: unknown[] = [];
  function FromProvider() {
    useLiveQuery((db) => db.select().from(notes));
    return <p>rendered</p>;
  }
  function Status() {
    return <p>{useSyncStatus()}</p>;
  }
  function Progress() {
    return <p>{useSyncProgress()?.rows}</p>;
  }
  function Suspended() {
    useSuspenseLiveQuery((db) => db.select().from(notes));
    return <p>rendered</p>;
  }
  function Db() {
    return <p>{useDatabase() === db ? 'rendered' : 'another database'}</p>;
  }
  function Client() {
    return <p>{useSyncClient().status}</p>;
  }
  const screen = await render(
    <div>
      {[FromProvider, Status, Progress, Suspended, Db, Client].map((Hooked) => (
        <Catch key={Hooked.name} onError={(error) => errors.push(error)}>
          <Hooked />
        </Catch>
      ))}
    </div>,
  );
  await expect.poll(() => errors.length).toBe(6);
  for (const error of errors) {
    expect(is(error, MissingProviderError)).toBe(true);
    expect(is(error, UsageError)).toBe(true);
  }
  const messages = errors.map((error) => (error as Error).message);
  expect(messages[0]).toMatch(
    /^useLiveQuery\(\(db\) => \.\.\.\) found no database: .*<SynclineProvider db=\{db\}>/,
  );
  expect(messages[1]).toMatch(/^useSyncStatus\(\) found no sync client: .*<SynclineProvider sync=\{sync\}>/);
  expect(messages[1]).toContain('useSyncStatus(sync)');
  expect(messages[2]).toMatch(/^useSyncProgress\(\) found no sync client/);
  expect(messages[3]).toMatch(/^useSuspenseLiveQuery\(\(db\) => \.\.\.\) found no database/);
  expect(messages[4]).toMatch(/^useDatabase\(\) found no database: .*<SynclineProvider db=\{db\}>/);
  expect(messages[5]).toMatch(/^useSyncClient\(\) found no sync client: .*<SynclineProvider sync=\{sync\}>/);
  expect(screen.getByText('rendered').query()).toBeNull();

  // Inside a provider the same components render.
  await screen.rerender(
    <SynclineProvider db={db}>
      <Db />
    </SynclineProvider>,
  );
  await expect.element(screen.getByText('rendered')).toBeInTheDocument();
});

it('refuses, with what to do, a query it cannot tell apart between renders', async () => {
  quietReactErrors();
  const errors: unknown[] = [];
  const noKey = { watch: () => bodies().watch() };
  function WithoutDeps() {
    useLiveQuery(noKey);
    return <p>rendered</p>;
  }
  function WithDeps() {
    const { data } = useLiveQuery(noKey, []);
    return <p>{data?.length === 0 ? 'no notes' : 'loading'}</p>;
  }
  const screen = await render(
    <>
      <Catch onError={(error) => errors.push(error)}>
        <WithoutDeps />
      </Catch>
      <WithDeps />
    </>,
  );
  await expect.element(screen.getByText('no notes')).toBeInTheDocument();
  expect(errors).toHaveLength(1);
  expect(is(errors[0], UsageError)).toBe(true);
  expect((errors[0] as Error).message).toMatch(/has no toSQL\(\): pass deps/);
});
