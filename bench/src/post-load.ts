import { connect, type Socket } from 'node:net'
import { v7 as uuidv7 } from 'uuid'
import { Answers, cpuPerAnswer, type LoadOptions, type LoadRequest, type LoadResult } from './load.js'

// The load of the writes, OTLP and overload suites: POSTs whose every request differs (an
// Idempotency-Key of its own, a new OTLP body), and GETs, on keep-alive connections, one request
// at a time on each, each connection walking the requests in turn as autocannon does.
// autocannon builds such a request anew from its options every time (setupRequest): about 30 µs
// of the driver's CPU an append of 100 lines, against a few for one it built once, on the two
// cores the driver shares with the server, so that a keyed arm was held back by the driver and
// an unkeyed one was not (a server that answers at once: autocannon 40 µs of CPU a request with a
// request built once, 70 with a key each time; this, 12 and 18). Here a request is its head,
// built once, the lines that change and its body, written to the socket together; an answer is
// read as far as its length says, its bytes counted, not parsed (AnswerReader: autocannon parsed
// the overload suite's 200 KB pages in JavaScript, and was the queue it measured).

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

/** An answer's head (up to its blank line): its status, and its length in all when it says it (content-length). */
function headOf(head: string): { status: number; length: number | undefined } {
  const status = Number(head.slice(9, 12))
  const length = /\r\ncontent-length: *(\d+)/i.exec(head)
  if (length) return { status, length: head.length + Number(length[1]) }
  // Neither a length nor chunks: the head is all (a 204, a 304).
  return { status, length: /\r\ntransfer-encoding: *chunked/i.test(head) ? undefined : head.length }
}

/** How far a chunked answer that starts `text` goes, or undefined while it is not all there. */
function chunkedLength(text: string, bodyAt: number): number | undefined {
  // Chunks until the one of size 0 and the blank line after it.
  let at = bodyAt
  for (;;) {
    const line = text.indexOf('\r\n', at)
    if (line < 0) return undefined
    const size = parseInt(text.slice(at, line), 16)
    if (size === 0) return text.startsWith('\r\n', line + 2) ? line + 4 : undefined
    at = line + 2 + size + 2
    if (at > text.length) return undefined
  }
}

/**
 * An answer read off a connection as its chunks come: its head once, then its body counted, not
 * kept (the overload suite's pages are about 200 KB: turning each into text, again with each
 * chunk, was the driver's own queue).
 */
class AnswerReader {
  #chunks: Buffer[] = []
  #bytes = 0
  /** The answer's status and its length in all, once its head is read (undefined length: chunked). */
  #head: { status: number; length: number | undefined } | undefined

  /** Takes a chunk; returns the answers it completes (one at a time here: no pipelining). */
  push(chunk: Buffer): { status: number; length: number }[] {
    this.#chunks.push(chunk)
    this.#bytes += chunk.length
    const done: { status: number; length: number }[] = []
    for (;;) {
      if (!this.#head) {
        const all = this.#joined()
        const end = all.indexOf('\r\n\r\n')
        if (end < 0) return done
        this.#head = headOf(all.toString('latin1', 0, end + 4))
      }
      let length = this.#head.length
      if (length === undefined) length = chunkedLength(this.#joined().toString('latin1'), this.#headBytes())
      if (length === undefined || this.#bytes < length) return done
      done.push({ status: this.#head.status, length })
      const rest = this.#joined().subarray(length)
      this.#chunks = rest.length > 0 ? [rest] : []
      this.#bytes = rest.length
      this.#head = undefined
      if (rest.length === 0) return done
    }
  }

  #joined(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks, this.#bytes)]
    return this.#chunks[0] ?? Buffer.alloc(0)
  }

  #headBytes(): number {
    return this.#joined().indexOf('\r\n\r\n') + 4
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
    const reader = new AnswerReader()
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
    socket.on('data', (chunk: Buffer) => {
      const [answer] = reader.push(chunk)
      if (!answer) return
      clearTimeout(timer)
      waiting = false
      bytes += answer.length
      answers.record(answer.status, performance.now() - sentAt)
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
