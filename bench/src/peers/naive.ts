import { createServer } from 'node:http'
import { peerArgs } from './fixtures.js'

// The naive peer: bare node:http and JSON.stringify of the response object on every request,
// as a conventional handler does once it has its objects in hand.

const { fixtures, port } = peerArgs()
const objects = new Map<string, unknown>(fixtures.map((f) => [f.path, JSON.parse(f.body)]))

createServer((req, res) => {
  const value = objects.get(req.url!)
  if (value === undefined) {
    res.writeHead(404).end()
    return
  }
  const body = JSON.stringify(value)
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}).listen(port, '127.0.0.1')
