// Server-Sent Events as they come over the wire: a stream of messages, each a block of lines that
// ends with a blank line (`field: value`, or `: comment`). A stream that does not end is read only
// as far as a test needs, with a timeout, and then cancelled (which closes the connection): a
// stream is never read "to its end". Nothing here knows the spec; spec.ts holds the messages to it.

/** One message (a block of lines up to a blank line) as sent. */
export interface SseMessage {
  /** Its fields in the order sent, `[name, value]`, the one space after the colon dropped. */
  fields: [string, string][]
  /** Its comment lines, the colon dropped (`: keep-alive` is ` keep-alive`). */
  comments: string[]
  /** The message's text as sent, its blank line included. */
  raw: string
}

/** The value of a message's field (the first one of that name), or undefined. */
export const field = (message: SseMessage, name: string): string | undefined =>
  message.fields.find(([n]) => n === name)?.[1]

/** The complete messages at the start of `text`, and what follows the last one (a message not yet complete). */
export function parseEventStream(text: string): { messages: SseMessage[]; rest: string } {
  const messages: SseMessage[] = []
  let start = 0
  for (;;) {
    const end = text.indexOf('\n\n', start)
    if (end < 0) break
    const block = text.slice(start, end)
    const message: SseMessage = { fields: [], comments: [], raw: text.slice(start, end + 2) }
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        message.comments.push(line.slice(1))
        continue
      }
      const colon = line.indexOf(':')
      const name = colon < 0 ? line : line.slice(0, colon)
      let value = colon < 0 ? '' : line.slice(colon + 1)
      if (value.startsWith(' ')) value = value.slice(1)
      message.fields.push([name, value])
    }
    messages.push(message)
    start = end + 2
  }
  return { messages, rest: text.slice(start) }
}

export interface StreamRead {
  /** The text of the messages kept: up to the one that satisfied `until` (all, when it never did). */
  text: string
  messages: SseMessage[]
  /** Whether `until` was satisfied. */
  satisfied: boolean
  /** Whether the stream ended (by itself, before it was cancelled). */
  ended: boolean
  /** Whether reading stopped because `timeoutMs` passed. */
  timedOut: boolean
  /** The error a read failed with (a connection dropped mid-stream), if one did. */
  failed?: unknown
  /** Text after the last complete message when the stream ended or failed: a message cut short. */
  rest: string
}

export interface ReadOptions {
  /** Stops reading once the messages read so far satisfy it; the messages after that one are not kept. */
  until?: (messages: SseMessage[]) => boolean
  /** How long to read at most. */
  timeoutMs?: number
}

/** Reads a stream's messages until `until` holds, the stream ends, or `timeoutMs` passes; then cancels it. */
export async function readEventStream(
  body: ReadableStream<Uint8Array> | null,
  { until = () => false, timeoutMs = 2_000 }: ReadOptions = {},
): Promise<StreamRead> {
  const result: StreamRead = { text: '', messages: [], satisfied: false, ended: false, timedOut: false, rest: '' }
  if (!body) {
    result.ended = true
    return result
  }
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let text = ''
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs)
  })
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>> | 'timeout'
      try {
        chunk = await Promise.race([reader.read(), timeout])
      } catch (error) {
        result.failed = error
        break
      }
      if (chunk === 'timeout') {
        result.timedOut = true
        break
      }
      if (chunk.done) {
        text += decoder.decode()
        result.ended = true
        break
      }
      text += decoder.decode(chunk.value, { stream: true })
      const { messages } = parseEventStream(text)
      // The first prefix of the messages that satisfies `until`: what follows is not kept.
      for (let n = result.messages.length + 1; n <= messages.length; n++) {
        if (until(messages.slice(0, n))) {
          result.satisfied = true
          result.messages = messages.slice(0, n)
          break
        }
      }
      if (result.satisfied) break
      result.messages = messages
    }
  } finally {
    clearTimeout(timer)
    // Closes the connection (over HTTP) or ends the server's stream (in-process) at once.
    await Promise.race([reader.cancel().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 1_000))])
  }
  if (!result.satisfied) {
    const parsed = parseEventStream(text)
    result.messages = parsed.messages
    if (result.ended || result.failed !== undefined) result.rest = parsed.rest
  }
  result.text = result.messages.map((m) => m.raw).join('')
  return result
}

/** A prefix of a stream: every message up to the first whose `event:` is `name`, that one included. */
export const throughEvent = (name: string) => (messages: SseMessage[]) =>
  messages.some((m) => field(m, 'event') === name)

/** A prefix of a stream: `count` messages of event `name` after the first of event `after`. */
export const eventsAfter = (after: string, name: string, count: number) => (messages: SseMessage[]) => {
  const at = messages.findIndex((m) => field(m, 'event') === after)
  return at >= 0 && messages.slice(at + 1).filter((m) => field(m, 'event') === name).length >= count
}
