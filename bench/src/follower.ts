import { connect, type Socket } from 'node:net'
import { createInterface } from 'node:readline'

// Followers of the live tail (GET /sessions/{id}/events/stream), in a process of their own so
// that neither the API nor the driver shares their event loop. Told what to do on stdin, one
// command a line; answers one JSON line on stdout per command:
//   open URL N AUTHORIZATION   opens N streams (each its own connection); answers once every one
//                              has its first bytes (the `retry:` line): {"opened":N,"failed":F,"ms":…}
//   report                     what arrived since the last report, per event id, the time each
//                              stream got it: {"deliveries":{"sev_…":[ms, …]},"streams":N}; the
//                              times are process.hrtime in ms (CLOCK_MONOTONIC, the same clock in
//                              every process of the machine), so the driver compares them with its own
//   close                      ends every stream: {"closed":N}
// It prints "ready" when it starts.
//
// Each stream is a TCP socket that sends the request and reads the answer itself: the status
// line, then the chunked body, then the events' ids. A thousand streams of one session get each
// event within the same few milliseconds, and this process reads them one after another, so
// what it spends on each delays the times it takes of all those after it: node:http's response
// (its parser, a Readable and a string decoder per stream) cost about 20 µs a message here, and
// put 15 to 20 ms of this process's own into the p99 at 1,000 followers.

const streams: Socket[] = []
let deliveries = new Map<string, number[]>()

const nowMs = () => Number(process.hrtime.bigint() / 1000n) / 1000

/** Opens a stream; a 503 or 429 (the API shedding load, or at its cap) is tried again after a pause, as EventSource does. */
async function openOne(url: string, authorization: string): Promise<boolean> {
  for (let attempt = 1; attempt <= 10; attempt++) {
    const status = await tryOpen(url, authorization)
    if (status === 200) return true
    if (status !== 503 && status !== 429) return false
    await new Promise((r) => setTimeout(r, 200 * attempt))
  }
  return false
}

/** Takes the events' ids out of a chunked text/event-stream body, as its bytes arrive. */
class EventIds {
  /** Bytes of the body not yet taken apart (latin1: one character a byte). */
  #raw = ''
  /** The body's data, unchunked, after the last whole message. */
  #text = ''

  /** The ids of the messages that `chunk` completes. */
  push(chunk: string): string[] {
    this.#raw += chunk
    for (;;) {
      const line = this.#raw.indexOf('\r\n')
      if (line < 0) break
      const size = parseInt(this.#raw.slice(0, line), 16)
      if (!(size > 0) || this.#raw.length < line + 2 + size + 2) break
      this.#text += this.#raw.slice(line + 2, line + 2 + size)
      this.#raw = this.#raw.slice(line + 2 + size + 2)
    }
    const ids: string[] = []
    let end: number
    while ((end = this.#text.indexOf('\n\n')) >= 0) {
      const message = this.#text.slice(0, end)
      this.#text = this.#text.slice(end + 2)
      if (message.startsWith('id: ')) ids.push(message.slice(4, message.indexOf('\n')))
    }
    return ids
  }
}

function tryOpen(url: string, authorization: string): Promise<number> {
  return new Promise((resolve) => {
    let settled = false
    const settle = (status: number) => {
      if (!settled) {
        settled = true
        resolve(status)
      }
    }
    const { hostname, port, pathname, search, host } = new URL(url)
    const socket = connect({ host: hostname, port: Number(port), noDelay: true })
    socket.setEncoding('latin1')
    socket.write(
      `GET ${pathname}${search} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${authorization}\r\n` +
        'Accept: text/event-stream\r\n\r\n',
    )
    let head: string | undefined = ''
    const body = new EventIds()
    socket.on('data', (chunk: string) => {
      const at = nowMs()
      if (head !== undefined) {
        head += chunk
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) return
        const status = Number(head.slice(9, 12))
        const rest = head.slice(end + 4)
        head = undefined
        if (status !== 200) {
          process.stderr.write(`follower: ${url} answered ${status}\n`)
          socket.destroy()
          return settle(status)
        }
        streams.push(socket)
        chunk = rest
        if (chunk === '') return
      }
      settle(200)
      for (const id of body.push(chunk)) {
        let times = deliveries.get(id)
        if (!times) deliveries.set(id, (times = []))
        times.push(at)
      }
    })
    socket.on('error', (error) => {
      process.stderr.write(`follower: ${error.message}\n`)
      settle(0)
    })
    socket.on('close', () => settle(0))
  })
}

async function open(url: string, n: number, authorization: string): Promise<void> {
  const started = nowMs()
  let opened = 0
  let failed = 0
  // A hundred at a time: a thousand at once would overflow the listen backlog.
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => openOne(url, authorization)))
    for (const ok of batch) {
      if (ok) opened++
      else failed++
    }
  }
  process.stdout.write(`${JSON.stringify({ opened, failed, ms: nowMs() - started })}\n`)
}

function close(): void {
  const n = streams.length
  for (const stream of streams.splice(0)) stream.destroy()
  process.stdout.write(`${JSON.stringify({ closed: n })}\n`)
}

let queue: Promise<void> = Promise.resolve()
createInterface({ input: process.stdin })
  .on('line', (line) => {
    const [command, ...args] = line.split(' ')
    queue = queue.then(async () => {
      if (command === 'open') await open(args[0]!, Number(args[1]), args.slice(2).join(' '))
      else if (command === 'report') {
        process.stdout.write(
          `${JSON.stringify({ deliveries: Object.fromEntries(deliveries), streams: streams.length })}\n`,
        )
        deliveries = new Map()
      } else if (command === 'close') close()
    })
  })
  .on('close', () => {
    for (const stream of streams) stream.destroy()
    process.exit(0)
  })

process.stdout.write('ready\n')
