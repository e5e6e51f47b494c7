import { serve, type RunningServer } from '@session-events/api'
import type { App } from './world.js'

// Two ways to reach an app: in-process through `app.request()`, and over real HTTP (a server on
// a free port, Node's fetch), where the transport adds headers of its own.

export interface SendOptions {
  /** GET unless said otherwise. */
  method?: string
  /** A secret or other key, sent as `Authorization: Bearer <key>`; null or absent sends none. */
  key?: string | null
  /** The whole Authorization header, when it is not a well-formed bearer key. */
  authorization?: string
  headers?: Record<string, string>
  /** The request body, as it goes on the wire. */
  body?: string
  /** The body's Content-Type: `application/json` by default when there is a body; null sends none. */
  contentType?: string | null
}

export interface Transport {
  readonly name: string
  send(app: App, path: string, options?: SendOptions): Promise<Response>
  close(): Promise<void>
}

function requestInit(options: SendOptions): RequestInit {
  const headers: Record<string, string> = {}
  const contentType =
    options.contentType === undefined ? (options.body === undefined ? null : 'application/json') : options.contentType
  if (contentType !== null) headers['Content-Type'] = contentType
  Object.assign(headers, options.headers)
  if (options.authorization !== undefined) headers.Authorization = options.authorization
  else if (options.key) headers.Authorization = `Bearer ${options.key}`
  return { method: options.method ?? 'GET', headers, ...(options.body !== undefined && { body: options.body }) }
}

export const inProcess: Transport = {
  name: 'in-process',
  send: async (app, path, options = {}) => app.request(path, requestInit(options)),
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
      return fetch(`${url}${path}`, requestInit(options))
    },
    async close() {
      await Promise.all([...servers.values()].map(async (s) => (await s).close({ timeoutMs: 1_000 })))
      servers.clear()
    },
  }
}
