import { createServer, type ServerResponse } from 'node:http'

// The limit of following (the follow suite): bare node:http holding the streams of each session
// (GET /sessions/{id}/events/stream) and, for each append (POST /sessions/{id}/events), answering
// 201 and then writing one precomputed message to every stream of the session, a write each, as
// the API's shared read does. Nothing is stored, read or serialised: what is left is what Node
// and the kernel take to write to N sockets on this machine, and what the followers take to read.
//
// `node follow-limit.js PORT EVENT_BYTES`: each 201 body and each message's data is an event of
// EVENT_BYTES (the API's, as the suite measured it), with an id of its own.

const [port, eventBytes] = process.argv.slice(2).map(Number)
if (!port || !eventBytes) throw new Error('usage: node follow-limit.js PORT EVENT_BYTES')

const streams = new Map<string, Set<ServerResponse>>()
let appended = 0

function event(id: string): string {
  const head = `{"id":"${id}","object":"session.event","padding":"`
  return `${head}${'x'.repeat(Math.max(0, eventBytes! - head.length - 2))}"}`
}

createServer((req, res) => {
  const match = /^\/sessions\/([^/]+)\/events(\/stream)?$/.exec(req.url ?? '')
  if (!match) return void res.writeHead(404).end()
  const sessionId = match[1]!
  if (req.method === 'GET' && match[2]) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.write('retry: 1000\n\n')
    let set = streams.get(sessionId)
    if (!set) streams.set(sessionId, (set = new Set()))
    const mine = set
    mine.add(res)
    res.on('close', () => mine.delete(res))
    return
  }
  if (req.method !== 'POST' || match[2]) return void res.writeHead(405).end()
  req.resume()
  req.on('end', () => {
    const id = `sev_limit${String(++appended).padStart(17, '0')}`
    const body = event(id)
    res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body)
    const message = Buffer.from(`id: ${id}\nevent: session_event\ndata: ${body}\n\n`)
    // After the 201 has gone, as the API's followers are woken after its commit.
    setImmediate(() => {
      for (const stream of streams.get(sessionId) ?? []) stream.write(message)
    })
  })
}).listen(port, '127.0.0.1')
