import { fileURLToPath } from 'node:url'

export const benchDir = fileURLToPath(new URL('..', import.meta.url))
export const repoDir = fileURLToPath(new URL('../..', import.meta.url))
/** Seeded datasets, reused between runs (gitignored). */
export const dataDir = fileURLToPath(new URL('../.data/', import.meta.url))
export const resultsDir = fileURLToPath(new URL('../results/', import.meta.url))
export const apiMain = fileURLToPath(new URL('../../apps/api/dist/main.js', import.meta.url))
/** The bundled spec: the Fastify peer takes its response schemas from here. */
export const specJson = fileURLToPath(new URL('../../openapi/dist/session-events.json', import.meta.url))
export const peerScript = (
  name:
    | 'limit'
    | 'naive'
    | 'fastify'
    | 'api-memoised-store'
    | 'layers'
    | 'kysely'
    | 'write-limit'
    | 'api-pglite'
    | 'follow-limit',
) => fileURLToPath(new URL(`./peers/${name}.js`, import.meta.url))
/** The writer that appends events beside the API (the api_writing diagnostic). */
export const writerScript = fileURLToPath(new URL('./writer.js', import.meta.url))
/** Node scripts that are not servers: the follower of the live tail, the store's own append loop. */
export const workerScript = (name: 'follower' | 'store-append') =>
  fileURLToPath(new URL(`./${name}.js`, import.meta.url))
/** Loaded into an API process with --import: answers its memory (after a GC) over IPC. */
export const memoryProbe = fileURLToPath(new URL('./peers/memory-probe.js', import.meta.url))
