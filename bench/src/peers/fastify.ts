import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import { specJson } from '../paths.js'
import { peerArgs } from './fixtures.js'

// Fastify, as a performance-minded user would write it: routes with the spec's response schemas,
// so that fast-json-stringify serialises the objects (held in memory) on every request. The
// schemas come from the bundled spec, not restated here.

const { fixtures, port } = peerArgs()
const spec = JSON.parse(readFileSync(specJson, 'utf8')) as { components: { schemas: Record<string, unknown> } }
const objects = new Map<string, unknown>(fixtures.map((f) => [f.path, JSON.parse(f.body)]))

const app = Fastify({ logger: false })
app.addSchema({ $id: 'session-events', components: { schemas: spec.components.schemas } })
const answers = (schema: string) => ({
  schema: { response: { 200: { $ref: `session-events#/components/schemas/${schema}` } } },
})

const fromMemory = (url: string) => objects.get(url)
app.get('/sessions/:sessionId/events', answers('SessionEventList'), async (request, reply) => {
  const value = fromMemory(request.url)
  return value === undefined ? reply.callNotFound() : value
})
app.get('/sessions/:sessionId/events/:sessionEventId', answers('SessionEvent'), async (request, reply) => {
  const value = fromMemory(request.url)
  return value === undefined ? reply.callNotFound() : value
})

await app.listen({ port, host: '127.0.0.1' })
