import { useState } from 'react';
import type { List } from '../schema.js';
import type { Say } from './message.js';
import type { PageConnection } from './page-connection.js';

/**
 * "Clear completed": a write made by the server's own code, not by this page
 * (`POST /api/clear-completed?list=ID`); the deletes come back through sync. A request that cannot
 * reach the server tells the connection (`unreachable()`), which turns the badge offline.
 *
 * @example
 *   <ClearCompletedButton list={selected} connection={connection} say={say} />
 */
export function ClearCompletedButton({
  list,
  connection,
  say,
}: {
  list: List | undefined;
  connection: PageConnection;
  say: Say;
}) {
  const [clearing, setClearing] = useState(false);
  const clear = async (list: List) => {
    setClearing(true);
    try {
      let response: Response;
      try {
        response = await fetch(`/api/clear-completed?list=${encodeURIComponent(list.id)}`, {
          method: 'POST',
        });
      } catch (error) {
        connection.unreachable();
        throw error;
      }
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      const { deleted } = (await response.json()) as { deleted: number };
      say(`The server cleared ${deleted} completed todo${deleted === 1 ? '' : 's'} of ${list.name}.`);
    } catch (error) {
      say(`Clear completed runs on the server, which is out of reach (${(error as Error).message}).`);
    } finally {
      setClearing(false);
    }
  };
  return (
    <button
      id="clear-completed"
      type="button"
      title="clears this list's done todos: runs on the server, then syncs to every page"
      disabled={!list || clearing}
      onClick={() => list && void clear(list)}
    >
      Clear completed
    </button>
  );
}
