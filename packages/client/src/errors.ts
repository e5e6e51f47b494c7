// The failures a call can end in. The API answered with an error: SessionEventsError, decoded
// from the body every error has (the spec's `Error` schema). The API did not answer:
// SessionEventsConnectionError, or SessionEventsTimeoutError when the client gave up waiting.
import type { ApiErrorBody, ApiErrorCode } from './types.js'

/** The API's own codes, and `malformed_response` for a body the client could not read. */
export type SessionEventsErrorCode = ApiErrorCode | 'malformed_response'

/** The API answered with a failure, or with a body that is not what the spec says. */
export class SessionEventsError extends Error {
  override name = 'SessionEventsError'
  /** The HTTP status of the response. */
  readonly status: number
  readonly code: SessionEventsErrorCode
  readonly hint: ApiErrorBody['hint']
  readonly entity: ApiErrorBody['entity']
  /** For `invalid_data`: one entry for each field that failed validation. */
  readonly errors: ApiErrorBody['errors']
  /** The `metorial-req-id` of the response, for support and logs. */
  readonly requestId: string | undefined
  /** The body as received: the decoded JSON, or the text when it is not JSON. */
  readonly body: unknown

  constructor(init: {
    status: number
    code: SessionEventsErrorCode
    message: string
    hint?: string | undefined
    entity?: string | undefined
    errors?: ApiErrorBody['errors']
    requestId?: string | undefined
    body: unknown
  }) {
    super(init.message)
    this.status = init.status
    this.code = init.code
    this.hint = init.hint
    this.entity = init.entity
    this.errors = init.errors
    this.requestId = init.requestId
    this.body = init.body
  }
}

/** The API could not be reached, or the connection broke before the response was read. */
export class SessionEventsConnectionError extends Error {
  override name = 'SessionEventsConnectionError'
  readonly code: 'connection_error' | 'timeout' = 'connection_error'

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
  }
}

/** No complete response came within `timeoutMs` (on the last attempt). */
export class SessionEventsTimeoutError extends SessionEventsConnectionError {
  override name = 'SessionEventsTimeoutError'
  override readonly code = 'timeout' as const

  constructor(readonly timeoutMs: number) {
    super(`The request timed out after ${timeoutMs} ms.`)
  }
}

/** Wraps whatever `fetch` threw when it got no response. */
export function connectionError(cause: unknown): SessionEventsConnectionError {
  return new SessionEventsConnectionError(`Could not reach the Session Events API: ${describe(cause)}.`, { cause })
}

/**
 * The error for a response that failed, or that succeeded with a body that is not JSON. A body
 * that has the spec's error shape is decoded; anything else (an HTML page from a proxy, an empty
 * body) becomes `malformed_response`, keeping the text in `body`.
 */
export function errorFromResponse(response: Response, text: string): SessionEventsError {
  const requestId = response.headers.get('metorial-req-id') ?? undefined
  const json = parseJson(text)
  if (!response.ok && isErrorBody(json)) {
    const { code, message, hint, entity, errors } = json
    return new SessionEventsError({
      status: response.status,
      code,
      message,
      hint,
      entity,
      errors,
      requestId,
      body: json,
    })
  }
  const what =
    json === undefined
      ? 'a body that is not JSON'
      : response.ok
        ? 'a body that is not a JSON object'
        : 'a body that is not an error of this API'
  const snippet = text.length > 200 ? `${text.slice(0, 200)}…` : text
  return new SessionEventsError({
    status: response.status,
    code: 'malformed_response',
    message: `The API answered ${response.status} with ${what}: ${JSON.stringify(snippet)}`,
    requestId,
    body: json === undefined ? text : json,
  })
}

/** The parsed JSON, or undefined when the text is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

function isErrorBody(json: unknown): json is ApiErrorBody {
  if (typeof json !== 'object' || json === null) return false
  const { code, message } = json as Record<string, unknown>
  return typeof code === 'string' && typeof message === 'string'
}

// "fetch failed" alone says little; undici puts the reason (ECONNREFUSED, …) in its cause.
function describe(error: unknown): string {
  const messages: string[] = []
  for (let e = error; e instanceof Error && messages.length < 4; e = e.cause) {
    const code = (e as { code?: unknown }).code
    messages.push(e.message || (typeof code === 'string' ? code : e.name))
  }
  return messages.length > 0 ? messages.join(': ') : String(error)
}
