// Reading a text/event-stream response in tests, by hand, message by message.

export interface Message {
  id?: string
  event?: string
  data?: string
  retry?: string
  comment?: string
}

/** Reads SSE messages off a response body as they come. */
export function messages(res: Response) {
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  const queue: Message[] = []
  /** Where the stream said it stands (its session.position message, which next() passes over). */
  const state: { position?: string } = {}
  let pending: ReturnType<typeof reader.read> | undefined
  async function next(timeoutMs = 5_000): Promise<Message | undefined> {
    const deadline = Date.now() + timeoutMs
    while (queue.length === 0) {
      const cut = buffer.indexOf('\n\n')
      if (cut >= 0) {
        const block = buffer.slice(0, cut)
        buffer = buffer.slice(cut + 2)
        const message: Message = {}
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) message.comment = line.slice(1).trim()
          else {
            const colon = line.indexOf(':')
            ;(message as Record<string, string>)[line.slice(0, colon)] = line.slice(colon + 2)
          }
        }
        if (message.event === 'session.position') state.position = message.id
        else queue.push(message)
        continue
      }
      const left = deadline - Date.now()
      if (left <= 0) return undefined
      // A read that the timeout outran stays pending, and the next call takes its chunk.
      pending ??= reader.read()
      let timer: NodeJS.Timeout | undefined
      const chunk = await Promise.race([
        pending,
        new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), left))),
      ])
      clearTimeout(timer)
      if (chunk === 'timeout') return undefined
      pending = undefined
      if (chunk.done) return undefined
      buffer += decoder.decode(chunk.value, { stream: true })
    }
    return queue.shift()
  }
  /** The next `n` events (messages with an id). */
  async function events(n: number, timeoutMs = 5_000): Promise<{ id: string; event: any }[]> {
    const out: { id: string; event: any }[] = []
    while (out.length < n) {
      const m = await next(timeoutMs)
      if (!m) throw new Error(`stream ended or stalled after ${out.length} of ${n} events`)
      if (m.id) out.push({ id: m.id, event: JSON.parse(m.data!) })
    }
    return out
  }
  return {
    next,
    events,
    get position() {
      return state.position
    },
    cancel: () => reader.cancel().catch(() => {}),
  }
}
