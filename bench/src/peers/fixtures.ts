import { readFileSync } from 'node:fs'

// What the peers serve: for each request path of the benchmark, the body the API returned for
// it. The limit sends these bytes as they are; the naive peer and Fastify serialise the objects
// they parse into, on every request.

export type Endpoint = 'list' | 'list_filtered' | 'get'

export interface Fixture {
  endpoint: Endpoint
  /** Path and query, as the load generator sends them. */
  path: string
  body: string
}

export function readFixtures(file: string): Fixture[] {
  return JSON.parse(readFileSync(file, 'utf8')) as Fixture[]
}

/** `node peer.js FIXTURES PORT`. */
export function peerArgs(): { fixtures: Fixture[]; port: number } {
  const [file, port] = process.argv.slice(2)
  if (!file || !port) throw new Error('usage: node peer.js FIXTURES_JSON PORT')
  return { fixtures: readFixtures(file), port: Number(port) }
}
