import type { AddressInfo, Socket } from 'node:net'
import { createAdaptorServer, type ServerType } from '@hono/node-server'
import { defaultConfig } from './config.js'
import { API_VERSION } from './respond.js'
import { errors } from './errors.js'
import { newId } from './ids.js'

export interface ServeOptions {
  app: { fetch: (request: Request, ...rest: any[]) => Response | Promise<Response> }
  /** Default: HOST's default (config.ts). */
  host?: string
  /** 0 picks a free port. Default: PORT's default (config.ts). */
  port?: number
}

export interface RunningServer {
  url: string
  port: number
  server: ServerType
  /** Stops accepting connections and resolves once the requests in flight are answered. */
  close(options?: { timeoutMs?: number }): Promise<void>
}

/** Connections the kernel may queue before the server accepts them. */
const LISTEN_BACKLOG = 4096

/** Serves the app over HTTP with @hono/node-server. */
export function serve(options: ServeOptions): Promise<RunningServer> {
  const { host, port } = defaultConfig({ host: options.host, port: options.port })
  return new Promise((resolve, reject) => {
    const server = createAdaptorServer({ fetch: options.app.fetch })
    // A longer queue of connections not yet accepted than Node's 511 (the kernel caps it at
    // net.core.somaxconn): while the event loop is busy, a burst of new connections overflows a
    // short one, and the kernel then drops them and the client sends again a second or more later.
    // Of 512 connections opened at once (the overload suite, SQLite), 361 had their first request
    // answered after 1 to 5 s that way; with this queue, 5.
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      const info = server.address() as AddressInfo
      const shownHost = host.includes(':') ? `[${host}]` : host
      resolve({
        url: `http://${shownHost}:${info.port}`,
        port: info.port,
        server,
        close: ({ timeoutMs = 10_000 } = {}) =>
          new Promise<void>((done) => {
            // close() stops accepting connections, ends idle keep-alive ones and calls back once
            // every request in flight has been answered; past the timeout, the rest are cut.
            const timer = setTimeout(() => {
              if ('closeAllConnections' in server) server.closeAllConnections()
            }, timeoutMs)
            timer.unref()
            // A connection whose last response ends after this (a stream, a slow request) is
            // idle from then on, and ended at the next sweep rather than at its keep-alive timeout.
            const sweep = setInterval(() => {
              if ('closeIdleConnections' in server) server.closeIdleConnections()
            }, 50)
            sweep.unref()
            server.close(() => {
              clearTimeout(timer)
              clearInterval(sweep)
              done()
            })
            if ('closeIdleConnections' in server) server.closeIdleConnections()
          }),
      })
    })
    server.once('error', reject)
    server.on('clientError', answerClientError)
  })
}

/**
 * A request that Node cannot parse (a head over its 16 KiB limit, a malformed request line) gets
 * the API's own 400 rather than Node's bare one, with the headers every response carries.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy()
    return
  }
  const tooLarge = error.code === 'HPE_HEADER_OVERFLOW'
  const body = JSON.stringify(
    errors.badRequest(
      tooLarge ? 'The request is too large: keep the URL and headers under 16 KiB.' : 'The request is not valid HTTP.',
    ).body,
  )
  socket.end(
    'HTTP/1.1 400 Bad Request\r\n' +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `metorial-req-id: ${newId('request')}\r\n` +
      `metorial-version: ${API_VERSION}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  )
}
