// A TCP proxy in front of the API server, to make it unreachable for a while for real: the
// client's connections are refused (closed at once), or its requests reach the server but the
// answers are lost on the way back (the connection is cut when the server starts answering),
// which is the case an Idempotency-Key is for.
import { type Server, type Socket, createConnection, createServer } from 'node:net'

export type ProxyMode =
  /** Bytes flow both ways. */
  | 'pass'
  /** Every connection, open or new, is cut at once: the API is down. */
  | 'refuse'
  /** Requests get through; the connection is cut as the answer comes back. */
  | 'drop-answers'

export interface TcpProxy {
  url: string
  mode: ProxyMode
  /** Loses the answers of the next `count` requests, then lets bytes flow both ways again. */
  loseAnswers(count: number): void
  /** Connections cut since start, for a test to check that the fault happened: refused ones,
   * and ones whose request got through but whose answer was lost. */
  readonly cut: { refused: number; answersLost: number }
  close(): Promise<void>
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port } = new URL(target)
  const open = new Set<Socket>()
  let mode: ProxyMode = 'pass'
  const cut = { refused: 0, answersLost: 0 }
  /** Answers still to lose before going back to 'pass'; Infinity while the mode is set by hand. */
  let answersToLose = Number.POSITIVE_INFINITY

  const cutOff = (client: Socket, upstream?: Socket) => {
    if (mode === 'drop-answers') {
      cut.answersLost++
      if (--answersToLose === 0) mode = 'pass'
    } else cut.refused++
    client.destroy()
    upstream?.destroy()
  }

  const server: Server = createServer((client) => {
    if (mode === 'refuse') return cutOff(client)
    const upstream = createConnection({ host: hostname, port: Number(port) })
    open.add(client)
    client.once('close', () => {
      open.delete(client)
      upstream.destroy()
    })
    upstream.once('close', () => client.destroy())
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.on('data', (chunk: Buffer) => {
      if (mode === 'refuse') return cutOff(client, upstream)
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (mode !== 'pass') return cutOff(client, upstream)
      client.write(chunk)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')

  return {
    url: `http://127.0.0.1:${address.port}`,
    get mode() {
      return mode
    },
    set mode(next: ProxyMode) {
      mode = next
      answersToLose = Number.POSITIVE_INFINITY
      // Going down cuts the connections that are open, kept-alive ones included.
      if (next === 'refuse') for (const client of open) cutOff(client)
    },
    loseAnswers(count) {
      mode = 'drop-answers'
      answersToLose = count
    },
    get cut() {
      return { ...cut }
    },
    close() {
      for (const client of open) client.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
