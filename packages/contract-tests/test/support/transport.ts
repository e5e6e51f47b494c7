import { serve, type RunningServer } from '@session-events/api'
import type { App } from './world.js'

// Two ways to reach an app: in-process through `app.request()`, and over real HTTP (a server on
// a free port, Node's fetch), where the transport adds headers of its own.

export interface SendOptions {
  /** A secret or other key, sent as `Authorization: Bearer <key>`; null or absent sends none. */
  key?: string | null
  /** The whole Authorization header, when it is not a well-formed bearer key. */
  authorization?: string
  headers?: Record<string, string>
}

export interface Transport {
  readonly name: string
  send(app: App, path: string, options?: SendOptions): Promise<Response>
  close(): Promise<void>
}

function requestHeaders(options: SendOptions): Record<string, string> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.authorization !== undefined) headers.Authorization = options.authorization
  else if (options.key) headers.Authorization = `Bearer ${options.key}`
  return headers
}

export const inProcess: Transport = {
  name: 'in-process',
  send: async (app, path, options = {}) => app.request(path, { headers: requestHeaders(options) }),
  close: async () => {},
}

/** Serves each app it is given on its own port, on first use; close() stops them all. */
export function overHttp(): Transport {
  const servers = new Map<App, Promise<RunningServer>>()
  return {
    name: 'HTTP',
    async send(app, path, options = {}) {
      let server = servers.get(app)
      if (!server) {
        server = serve({ app, port: 0 })
        servers.set(app, server)
      }
      const { url } = await server
      return fetch(`${url}${path}`, { headers: requestHeaders(options) })
    },
    async close() {
      await Promise.all([...servers.values()].map(async (s) => (await s).close({ timeoutMs: 1_000 })))
      servers.clear()
    },
  }
}
