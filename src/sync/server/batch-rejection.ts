/**
 * A pushed batch that must not be applied, with the reason the client is told (the ack's
 * `rejected`, the client's `rejected` event). Thrown inside the batch's transaction, which then
 * rolls back; the rejection is recorded apart (apply-push.ts).
 *
 * @example
 *   if (!allowed) throw new BatchRejection('todos: the write rule refused the insert of row {"id":"…"}');
 */
export class BatchRejection extends Error {}
