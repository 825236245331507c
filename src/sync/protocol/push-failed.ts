/**
 * The `error` code of a push the server failed to apply for a reason of its own (its database
 * failed, say), not because a rule or constraint refused a batch: not fatal, and the connection
 * stays up; the client pushes the batch again after a backoff.
 *
 * @example
 *   if (message.type === 'error' && message.code === PUSH_FAILED) retryPushLater();
 */
export const PUSH_FAILED = 'push_failed';
