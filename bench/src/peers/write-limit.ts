import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'

// The write limit: bare node:http that reads the request body, parses it as the API must
// (JSON.parse), and answers 201 with the bytes the API answered to a request of the same size
// (precomputed), storing nothing. No server that takes the same bodies can append faster over
// HTTP from Node on this machine.
// Usage: node write-limit.js ANSWERS_JSON PORT   (ANSWERS_JSON: {"<lines per request>": "<the API's 201 body>"})

const [file, port] = process.argv.slice(2)
if (!file || !port) throw new Error('usage: node write-limit.js ANSWERS_JSON PORT')
const answers = new Map(
  Object.entries(JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>).map(([lines, body]) => [
    Number(lines),
    Buffer.from(body),
  ]),
)

createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => {
    let lines = 0
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { log_lines?: unknown[] }
      lines = body.log_lines?.length ?? 0
    } catch {}
    const answer = answers.get(lines)
    if (req.method !== 'POST' || !answer) {
      res.writeHead(req.url === '/healthz' ? 200 : 400).end()
      return
    }
    res.writeHead(201, { 'content-type': 'application/json', 'content-length': String(answer.length) })
    res.end(answer)
  })
}).listen(Number(port), '127.0.0.1')
