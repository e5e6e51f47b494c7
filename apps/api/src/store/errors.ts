// What the store throws that its callers answer for: each error here becomes one answer of the
// API (app.ts, onError). The store says what happened in its own words; the API's error shape is
// made there, not here.

/** The store cannot be reached for now (a database that is down, a pool that is exhausted): a 503. */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError'
}

/**
 * A write names something that is not there for it (a run of another session, a server of
 * another instance…): the request's fault, answered with a 400 that names the field.
 */
export class InvalidReferenceError extends Error {
  override name = 'InvalidReferenceError'
  constructor(
    readonly path: (string | number)[],
    message: string,
  ) {
    super(message)
  }
}

/**
 * The session a write is for is not there: pruned (retention) since the API last read it, its
 * instance kept in the API's cache for a few seconds. A 404, as for a session that never was.
 */
export class SessionGoneError extends Error {
  override name = 'SessionGoneError'
  constructor() {
    super('The session is not there (any more).')
  }
}

/** A write that the state of what it writes to refuses (a stopped run): a 409. */
export class WriteConflictError extends Error {
  override name = 'WriteConflictError'
}

/** The Idempotency-Key came first with another request (another method, path or body): a 422. */
export class IdempotencyKeyReusedError extends Error {
  override name = 'IdempotencyKeyReusedError'
  constructor() {
    super('The Idempotency-Key was used with another request.')
  }
}

/** Another request with the Idempotency-Key is being written right now: a 409 with Retry-After. */
export class IdempotencyKeyInUseError extends Error {
  override name = 'IdempotencyKeyInUseError'
  constructor() {
    super('A request with this Idempotency-Key is being written.')
  }
}

/**
 * The Idempotency-Key's first request was refused: the refusal it got, as it was sent (status and
 * body), to be sent again as it is.
 */
export class RecordedRefusal extends Error {
  override name = 'RecordedRefusal'
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`the first request with this Idempotency-Key was refused (${status})`)
  }
}
