// The codes are part of the protocol (the client reads them too); the server exports them here.
export { SYNC_CLOSE_CODES } from '../protocol/close-codes.js';
