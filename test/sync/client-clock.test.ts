import { describe, expect, it } from 'vitest';
import { SyncProtocolError } from '../../src/index.js';
import { ClientClock } from '../../src/sync/client/client-clock.js';
import { encodeHlc } from '../../src/sync/protocol/hlc.js';

/**
 * The client's clock merges every stamp the server sends: the same stamp again (the changes of one
 * write share it) advances the clock just as a new one would, and a malformed one is refused.
 */

const server = (wallMs: number, counter: number) => encodeHlc({ wallMs, counter, nodeId: 'server' });

describe('client clock', () => {
  it('merges a stamp received again as it merged it the first time', () => {
    const clock = new ClientClock('c1', () => 1_000);
    clock.receive(server(5_000, 3));
    expect(clock.last).toBe(encodeHlc({ wallMs: 5_000, counter: 4, nodeId: 'c1' }));
    clock.receive(server(5_000, 3));
    expect(clock.last).toBe(encodeHlc({ wallMs: 5_000, counter: 5, nodeId: 'c1' }));
    clock.receive(server(5_000, 10));
    expect(clock.last).toBe(encodeHlc({ wallMs: 5_000, counter: 11, nodeId: 'c1' }));
    expect(() => clock.receive('5000-3-server')).toThrow(SyncProtocolError);
    clock.receive(server(5_000, 3));
    expect(clock.last).toBe(encodeHlc({ wallMs: 5_000, counter: 12, nodeId: 'c1' }));
  });
});
