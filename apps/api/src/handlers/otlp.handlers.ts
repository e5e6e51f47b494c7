import type { RouteHandler } from '@hono/zod-openapi'
import type { Routes } from '@session-events/server-stubs'
import type { Context } from 'hono'
import type { AppEnv } from '../env.js'
import { errors } from '../errors.js'
import { respond } from '../respond.js'
import { IdempotencyKeyInUseError } from '../store/types.js'
import type { OtlpIntake } from '../otlp/intake.js'
import {
  bodyHash,
  contentTypeOf,
  decodeRequest,
  encodeResponse,
  encodeStatus,
  encodingOf,
  OtlpRefusal,
  readBody,
  RpcCode,
} from '../otlp/wire.js'

// POST /v1/logs, OTLP/HTTP: the body is read here, not by the route (the spec marks it
// `x-read-by-handler`): gzip or not, at most 20 MiB inflated, protobuf or OTLP JSON; its records
// are stored by the intake (otlp/intake.ts); the answer is in the request's encoding.

export function otlpHandlers(intake: OtlpIntake): {
  exportLogs: RouteHandler<Routes['exportLogs'], AppEnv>
} {
  return {
    // The route's typed answers are OTLP bytes: they are sent as they are.
    exportLogs: (async (c: Context<AppEnv>) => {
      const encoding = encodingOf(c.req.header('content-type'))
      try {
        if (encoding === undefined) {
          throw new OtlpRefusal(
            415,
            RpcCode.INVALID_ARGUMENT,
            `Send an ExportLogsServiceRequest as application/x-protobuf or application/json, not ${c.req.header('content-type') ?? 'a body without Content-Type'}.`,
          )
        }
        const body = await readBody(c.req.raw, c.req.header('content-encoding'))
        const request = decodeRequest(body, encoding)
        const rejected = await intake.export(c.get('instanceId'), request, bodyHash(body))
        return respond(c, encodeResponse(encoding, rejected), 200, { 'content-type': contentTypeOf(encoding) })
      } catch (error) {
        // The same export (or a service instance's first session or run) being written right now
        // by another request: a retry finds it written. 503 is one of the statuses exporters retry.
        if (error instanceof IdempotencyKeyInUseError) throw errors.unavailable(1)
        if (!(error instanceof OtlpRefusal)) throw error
        const as = encoding ?? 'json'
        return respond(c, encodeStatus(as, error.code, error.message), error.status, {
          'content-type': contentTypeOf(as),
        })
      }
    }) as unknown as RouteHandler<Routes['exportLogs'], AppEnv>,
  }
}
