// A scripted `fetch` for the faults a real server cannot be made to produce on cue: each call
// takes the next step of the script. No network mocking: the client is simply given this function.
import type { Fetch } from '../src/index.js'

export type Step =
  | Response
  | Error
  /** Never answers; rejects when the request's signal aborts, as a real fetch does. */
  | 'hang'
  /** Never answers and ignores the signal, like an in-process app. */
  | 'hang-deaf'
  | ((request: Request) => Response | Promise<Response>)

export type ScriptedFetch = Fetch & { requests: Request[] }

export function scriptedFetch(...steps: Step[]): ScriptedFetch {
  const requests: Request[] = []
  const fetch = async (input: Request): Promise<Response> => {
    requests.push(input)
    const step = steps[requests.length - 1]
    if (step === undefined) throw new Error(`scriptedFetch: no step for request ${requests.length}`)
    if (step === 'hang') {
      return new Promise((_, reject) => {
        input.signal.addEventListener('abort', () => reject(input.signal.reason), { once: true })
      })
    }
    if (step === 'hang-deaf') return new Promise(() => {})
    if (step instanceof Error) throw step
    return typeof step === 'function' ? step(input) : step
  }
  return Object.assign(fetch, { requests })
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      'content-type': 'application/json',
      'metorial-req-id': 'req_0123456789abcdefABCDEF',
      ...headers,
    },
  })
}

export function apiError(status: number, code: string, message: string, extra: Record<string, unknown> = {}): Response {
  return json(status, { __typename: 'error', ok: false, status, code, message, ...extra })
}

/** A 200 whose body starts and then never ends. */
export function stalledBody(): Response {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"object":'))
    },
  })
  return new Response(stream, { status: 200, headers: { 'content-type': 'application/json' } })
}

/** A 200 whose connection drops in the middle of the body. */
export function brokenBody(): Response {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"object":'))
      controller.error(new TypeError('terminated'))
    },
  })
  return new Response(stream, { status: 200, headers: { 'content-type': 'application/json' } })
}

/** What undici throws when nothing listens on the port. */
export function connectionRefused(): TypeError {
  const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), {
    code: 'ECONNREFUSED',
  })
  return new TypeError('fetch failed', { cause })
}

/** A stand-in event: the client passes events through without validating them. */
export function event(id: string, created_at = '2025-07-20T12:25:38.980Z') {
  return { object: 'session.event', id, session_id: 'ses_0m5q3jz7a4GhR2sLmN8pQ1', created_at }
}

export function page(items: unknown[], pagination: Record<string, unknown>) {
  return json(200, { __typename: 'list', items, pagination })
}

export interface ScriptedStream {
  /** The 200 `text/event-stream` to give the client. */
  response: Response
  /** Whether the client has cancelled the body. */
  readonly cancelled: boolean
}

/**
 * A 200 `text/event-stream` whose body hands out `chunks` one read at a time (so that each
 * arrives on its own, split where the test split it), then ends (`'end'`: the server closed the
 * stream), drops (`'drop'`: the connection broke mid-body) or waits for more that never comes
 * (`'hang'`, until the client cancels).
 */
export function eventStream(chunks: (string | Uint8Array)[], then: 'end' | 'drop' | 'hang' = 'hang'): ScriptedStream {
  let next = 0
  let cancelled = false
  const encoder = new TextEncoder()
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        const chunk = chunks[next]
        if (chunk !== undefined) {
          next += 1
          controller.enqueue(typeof chunk === 'string' ? encoder.encode(chunk) : chunk)
        } else if (then === 'end') controller.close()
        else if (then === 'drop') controller.error(new TypeError('terminated'))
        else return new Promise(() => {})
      },
      cancel: () => void (cancelled = true),
    },
    // Nothing is read ahead: each chunk is made when the client asks for it.
    { highWaterMark: 0 },
  )
  const response = new Response(body, {
    status: 200,
    headers: {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'metorial-req-id': 'req_0123456789abcdefABCDEF',
    },
  })
  return {
    response,
    get cancelled() {
      return cancelled
    },
  }
}

/** One Server-Sent Events message carrying a session event, as the API sends it. */
export function sseMessage(sessionEvent: { id: string }, eol = '\n'): string {
  return [`id: ${sessionEvent.id}`, 'event: session.event', `data: ${JSON.stringify(sessionEvent)}`, '', ''].join(eol)
}

/** The bytes of `text` cut into pieces of `size` bytes: lines, and characters, split anywhere. */
export function bytePieces(text: string, size: number): Uint8Array[] {
  const bytes = new TextEncoder().encode(text)
  const pieces: Uint8Array[] = []
  for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.slice(i, i + size))
  return pieces
}
