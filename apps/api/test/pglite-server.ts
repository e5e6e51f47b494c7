import { createServer, type AddressInfo, type Socket } from 'node:net'
import type { PGlite } from '@electric-sql/pglite'

// PGlite on a TCP port, speaking the PostgreSQL wire protocol, so that API processes can share
// one PGlite as they would share a server: what the scale-out and fault tests need on a machine
// without PostgreSQL. PGlite is one session; clients take turns, a batch of messages (up to a
// Sync or a simple Query) at a time, and a client that opens a transaction keeps the session
// until it ends it (or disconnects: then it is rolled back). Authentication is trust. Each
// client's `options=-c search_path=…` is applied before its batches.

export interface PgliteServer {
  port: number
  /** Drops the connections whose application_name matches, as pg_terminate_backend would. */
  dropConnections(applicationName: string): number
  close(): Promise<void>
}

const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104
const CANCEL_REQUEST = 80877102
const PROTOCOL_3 = 196608

function message(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(5)
  header.write(type, 0, 'latin1')
  header.writeInt32BE(body.length + 4, 1)
  return Buffer.concat([header, body])
}
const cstring = (s: string) => Buffer.from(`${s}\0`, 'utf8')
const int32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return b
}
const simpleQuery = (sql: string) => message('Q', cstring(sql))

/** The transaction status of the last ReadyForQuery in a response: I (idle), T (in a transaction), E (failed one). */
function lastStatus(response: Uint8Array): string | undefined {
  let status: string | undefined
  let at = 0
  const view = Buffer.from(response.buffer, response.byteOffset, response.byteLength)
  while (at + 5 <= view.length) {
    const type = view[at]!
    const length = view.readInt32BE(at + 1)
    if (type === 0x5a /* Z */) status = String.fromCharCode(view[at + 5]!)
    at += 1 + length
  }
  return status
}

/**
 * Splits a response into the notifications in it (NotificationResponse, 'A': on one shared
 * session they arrive in whichever client's response comes next) and the rest.
 */
function takeNotifications(response: Uint8Array): {
  rest: Buffer
  notifications: { channel: string; message: Buffer }[]
} {
  const view = Buffer.from(response.buffer, response.byteOffset, response.byteLength)
  const rest: Buffer[] = []
  const notifications: { channel: string; message: Buffer }[] = []
  let at = 0
  while (at + 5 <= view.length) {
    const length = view.readInt32BE(at + 1)
    const message = view.subarray(at, at + 1 + length)
    if (view[at] === 0x41 /* A */) {
      const channelEnd = message.indexOf(0, 9)
      notifications.push({ channel: message.subarray(9, channelEnd).toString('utf8'), message: Buffer.from(message) })
    } else rest.push(message)
    at += 1 + length
  }
  return { rest: Buffer.concat(rest), notifications }
}

export async function servePglite(db: PGlite): Promise<PgliteServer> {
  const connections = new Map<Socket, { applicationName: string }>()
  /** The channels each client LISTENs on: notifications go to those clients, as a server's would. */
  const listening = new Map<Socket, Set<string>>()
  /** The turn: resolves when the session is free; `owner` keeps it through a transaction. */
  let free: Promise<void> = Promise.resolve()
  let owner: Socket | undefined
  let release: (() => void) | undefined
  let nextPid = 1000

  async function take(socket: Socket) {
    if (owner === socket) return
    const previous = free
    let done!: () => void
    free = new Promise<void>((resolve) => (done = resolve))
    await previous
    owner = socket
    release = done
  }
  function give(socket: Socket) {
    if (owner !== socket) return
    owner = undefined
    const done = release
    release = undefined
    done?.()
  }

  const server = createServer((socket) => {
    let buffer = Buffer.alloc(0)
    let started = false
    let searchPath: string | undefined
    let batch: Buffer[] = []
    let queue = Promise.resolve()
    let closed = false
    /** This client's transaction status, as the last ReadyForQuery said. */
    let status = 'I'

    const run = (messages: Buffer) =>
      (queue = queue.then(async () => {
        if (closed) return
        await take(socket)
        if (closed) return give(socket)
        const response = await db.runExclusive(async () => {
          if (searchPath !== undefined) await db.execProtocolRaw(simpleQuery(`set search_path to ${searchPath}`))
          return db.execProtocolRaw(messages)
        })
        const { rest, notifications } = takeNotifications(response)
        if (!closed) socket.write(rest)
        for (const { channel, message } of notifications) {
          for (const [listener, channels] of listening)
            if (channels.has(channel) && !listener.destroyed) listener.write(message)
        }
        status = lastStatus(response) ?? status
        if (status === 'I') give(socket)
      }))

    const end = () => {
      if (closed) return
      closed = true
      connections.delete(socket)
      listening.delete(socket)
      socket.destroy()
      // A client gone in the middle of its transaction: undo it and free the session.
      queue = queue.then(async () => {
        if (owner === socket) {
          await db.runExclusive(() => db.execProtocolRaw(simpleQuery('rollback'))).catch(() => {})
          give(socket)
        }
      })
    }
    socket.on('error', end).on('close', end)

    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk])
      for (;;) {
        if (!started) {
          if (buffer.length < 8) return
          const length = buffer.readInt32BE(0)
          if (buffer.length < length) return
          const code = buffer.readInt32BE(4)
          const body = buffer.subarray(8, length)
          buffer = buffer.subarray(length)
          if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
            socket.write('N')
            continue
          }
          if (code === CANCEL_REQUEST || code !== PROTOCOL_3) return end()
          const params = body.toString('utf8').split('\0')
          const settings: Record<string, string> = {}
          for (let i = 0; i + 1 < params.length; i += 2) if (params[i]) settings[params[i]!] = params[i + 1]!
          const path = /search_path=(\S+)/.exec(settings.options ?? '')?.[1]
          searchPath = path && /^[\w$,"]+$/.test(path) ? path : undefined
          connections.set(socket, { applicationName: settings.application_name ?? '' })
          started = true
          socket.write(
            Buffer.concat([
              message('R', int32(0)),
              message('S', Buffer.concat([cstring('server_version'), cstring('18.0')])),
              message('S', Buffer.concat([cstring('server_encoding'), cstring('UTF8')])),
              message('S', Buffer.concat([cstring('client_encoding'), cstring('UTF8')])),
              message('S', Buffer.concat([cstring('DateStyle'), cstring('ISO, MDY')])),
              message('S', Buffer.concat([cstring('integer_datetimes'), cstring('on')])),
              message('S', Buffer.concat([cstring('standard_conforming_strings'), cstring('on')])),
              message('K', Buffer.concat([int32(nextPid++), int32(0)])),
              message('Z', Buffer.from('I')),
            ]),
          )
          continue
        }
        if (buffer.length < 5) return
        const type = String.fromCharCode(buffer[0]!)
        const length = buffer.readInt32BE(1)
        if (buffer.length < 1 + length) return
        const whole = buffer.subarray(0, 1 + length)
        buffer = buffer.subarray(1 + length)
        if (type === 'X') return end()
        if (type === 'Q') {
          const listen = /^\s*LISTEN\s+"?(\w+)"?/i.exec(whole.subarray(5, whole.length - 1).toString('utf8'))
          if (listen) {
            let channels = listening.get(socket)
            if (!channels) listening.set(socket, (channels = new Set()))
            channels.add(listen[1]!)
          }
        }
        batch.push(Buffer.from(whole))
        // A Sync or a simple Query ends what the client expects an answer to; a Flush asks for one.
        if (type === 'S' || type === 'Q' || type === 'H') {
          const messages = Buffer.concat(batch)
          batch = []
          void run(messages)
        }
      }
    })
  })

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    dropConnections(applicationName) {
      let dropped = 0
      for (const [socket, info] of connections) {
        if (info.applicationName === applicationName) {
          socket.destroy()
          dropped += 1
        }
      }
      return dropped
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of connections.keys()) socket.destroy()
        server.close(() => resolve())
      }),
  }
}
