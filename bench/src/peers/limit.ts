import { createServer } from 'node:http'
import { peerArgs } from './fixtures.js'

// The limit: bare node:http answering each request with the exact bytes the API returned,
// precomputed. Nothing is cheaper to serve over HTTP from Node on this machine.

const { fixtures, port } = peerArgs()
const answers = new Map(
  fixtures.map((f) => {
    const body = Buffer.from(f.body)
    return [f.path, { body, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } }]
  }),
)

createServer((req, res) => {
  const answer = answers.get(req.url!)
  if (!answer) {
    res.writeHead(404).end()
    return
  }
  res.writeHead(200, answer.headers)
  res.end(answer.body)
}).listen(port, '127.0.0.1')
