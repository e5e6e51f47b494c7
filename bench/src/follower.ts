import { request, type ClientRequest, type IncomingMessage } from 'node:http'
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

interface Stream {
  request: ClientRequest
  response?: IncomingMessage
}

const streams: Stream[] = []
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

function tryOpen(url: string, authorization: string): Promise<number> {
  return new Promise((resolve) => {
    let settled = false
    const settle = (status: number) => {
      if (!settled) {
        settled = true
        resolve(status)
      }
    }
    const req = request(url, { headers: { authorization, accept: 'text/event-stream' }, agent: false })
    const stream: Stream = { request: req }
    req.on('response', (response) => {
      stream.response = response
      if (response.statusCode !== 200) {
        response.resume()
        process.stderr.write(`follower: ${url} answered ${response.statusCode}\n`)
        return settle(response.statusCode ?? 0)
      }
      streams.push(stream)
      response.setEncoding('utf8')
      let buffer = ''
      response.on('data', (chunk: string) => {
        const at = nowMs()
        settle(200)
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const message = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          if (!message.startsWith('id: ')) continue
          const id = message.slice(4, message.indexOf('\n'))
          let times = deliveries.get(id)
          if (!times) deliveries.set(id, (times = []))
          times.push(at)
        }
      })
      response.on('error', () => {})
    })
    req.on('error', (error) => {
      process.stderr.write(`follower: ${error.message}\n`)
      settle(0)
    })
    req.end()
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
  for (const stream of streams.splice(0)) {
    stream.response?.destroy()
    stream.request.destroy()
  }
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
    for (const stream of streams) stream.request.destroy()
    process.exit(0)
  })

process.stdout.write('ready\n')
