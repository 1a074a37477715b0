/** Set on errors thrown because the client went away, so the handler records client_closed. */
export class ClientGoneError extends Error {}
