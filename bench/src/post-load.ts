import { connect, type Socket } from 'node:net'
import { v7 as uuidv7 } from 'uuid'
import { Answers, cpuPerAnswer, type LoadOptions, type LoadRequest, type LoadResult } from './load.js'

// The load of the writes and OTLP suites: POSTs whose every request differs (an Idempotency-Key
// of its own, a new OTLP body), on keep-alive connections, one request at a time on each, each
// connection walking the requests in turn as autocannon does. autocannon builds such a request
// anew from its options every time (setupRequest): about 30 µs of the driver's CPU an append of
// 100 lines, against a few for one it built once, on the two cores the driver shares with the
// server, so that a keyed arm was held back by the driver and an unkeyed one was not (a server
// that answers at once: autocannon 40 µs of CPU a request with a request built once, 70 with a
// key each time; this, 12 and 18). Here a request is its head, built once, the lines that change
// and its body, written to the socket together; an answer is read as far as its length says.

interface Prepared {
  head: Buffer
  /** The body, when it is the same every time, and its length line. */
  body?: Buffer
  tail?: Buffer
  request: LoadRequest
}

function prepare(url: URL, request: LoadRequest): Prepared {
  const method = request.method ?? 'GET'
  const headers: Record<string, string> = {
    host: url.host,
    ...(method === 'POST' && { 'content-type': 'application/json' }),
    ...request.headers,
  }
  const head = Buffer.from(
    `${method} ${request.path} HTTP/1.1\r\n` +
      Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join(''),
  )
  if (request.newBody) return { head, request }
  const body = request.body === undefined ? Buffer.alloc(0) : Buffer.from(request.body)
  return { head, body, tail: Buffer.from(`content-length: ${body.length}\r\n\r\n`), request }
}

/** How far an answer that starts `text` goes: its status and its length in all, or undefined while it is not all there. */
function answerIn(text: string): { status: number; length: number } | undefined {
  const end = text.indexOf('\r\n\r\n')
  if (end < 0) return undefined
  const head = text.slice(0, end).toLowerCase()
  const status = Number(text.slice(9, 12))
  const length = /\r\ncontent-length: *(\d+)/.exec(head)
  if (length) {
    const total = end + 4 + Number(length[1])
    return text.length >= total ? { status, length: total } : undefined
  }
  if (!head.includes('\r\ntransfer-encoding: chunked')) return { status, length: end + 4 }
  // A chunked body: chunks until the one of size 0 and the blank line after it.
  let at = end + 4
  for (;;) {
    const line = text.indexOf('\r\n', at)
    if (line < 0) return undefined
    const size = parseInt(text.slice(at, line), 16)
    if (size === 0) return text.startsWith('\r\n', line + 2) ? { status, length: line + 4 } : undefined
    at = line + 2 + size + 2
    if (at > text.length) return undefined
  }
}

/** POSTs (or GETs) at `connections` connections for `durationS` seconds; the same result as load()'s. */
export function postLoad(options: LoadOptions): Promise<LoadResult> {
  const url = new URL(options.url)
  const prepared = options.requests.map((r) => prepare(url, r))
  const timeoutMs = (options.timeoutS ?? 10) * 1000
  const answers = new Answers()
  let bytes = 0
  let connectionErrors = 0
  let timeouts = 0
  const cpuBefore = options.serverCpu?.() ?? null
  const started = performance.now()
  let stopped = false
  const sockets = new Set<Socket>()

  /** One connection: a request, its answer, the next, until the time is up. */
  const connection = (next: number) => {
    if (stopped) return
    const socket = connect({ host: url.hostname, port: Number(url.port), noDelay: true })
    sockets.add(socket)
    socket.setEncoding('latin1')
    let received = ''
    let sentAt = 0
    let waiting = false
    let timer: NodeJS.Timeout | undefined
    const send = () => {
      const p = prepared[next]!
      next = (next + 1) % prepared.length
      socket.cork()
      socket.write(p.head)
      if (p.request.idempotencyKeys) socket.write(`idempotency-key: ${uuidv7()}\r\n`)
      if (p.body) {
        socket.write(p.tail!)
        socket.write(p.body)
      } else {
        const body = Buffer.from(p.request.newBody!())
        socket.write(`content-length: ${body.length}\r\n\r\n`)
        socket.write(body)
      }
      socket.uncork()
      sentAt = performance.now()
      waiting = true
      timer = setTimeout(() => {
        timeouts++
        waiting = false
        socket.destroy()
      }, timeoutMs)
    }
    socket.on('connect', send)
    socket.on('data', (chunk: string) => {
      received += chunk
      const answer = answerIn(received)
      if (!answer) return
      clearTimeout(timer)
      waiting = false
      bytes += answer.length
      answers.record(answer.status, performance.now() - sentAt)
      received = received.slice(answer.length)
      if (stopped) socket.destroy()
      else send()
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      sockets.delete(socket)
      if (stopped) return
      // Closed with a request unanswered (or before the first): a connection error, as autocannon counts one.
      if (waiting || sentAt === 0) connectionErrors++
      setTimeout(() => connection(next), 10)
    })
  }

  for (let i = 0; i < options.connections; i++) connection(0)
  return new Promise((resolve) => {
    setTimeout(() => {
      stopped = true
      const durationS = (performance.now() - started) / 1000
      for (const socket of sockets) socket.destroy()
      const cpuAfter = options.serverCpu?.() ?? null
      const non2xx = Object.entries(answers.statuses).reduce((n, [s, c]) => (s.startsWith('2') ? n : n + c), 0)
      resolve({
        rps: answers.ok / durationS,
        ...answers.times(),
        ok: answers.ok,
        errors: connectionErrors + timeouts + non2xx,
        durationS,
        bytesPerS: bytes / durationS,
        cpuUsPerReq: cpuPerAnswer(cpuBefore, cpuAfter, answers.ok),
        maxMs: answers.maxMs,
        statuses: answers.statuses,
        connectionErrors,
        timeouts,
      })
    }, options.durationS * 1000)
  })
}
