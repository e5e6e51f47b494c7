import { createHash } from 'node:crypto'
import { promisify } from 'node:util'
import { gunzip } from 'node:zlib'
import { create, fromBinary, fromJson, toBinary, toJsonString, type JsonValue } from '@bufbuild/protobuf'
import {
  ExportLogsServiceRequestSchema,
  ExportLogsServiceResponseSchema,
  type ExportLogsServiceRequest,
} from '../generated/otlp/opentelemetry/proto/collector/logs/v1/logs_service_pb.js'
import { StatusSchema } from '../generated/otlp/google/rpc/status_pb.js'
import { readPlainRequest } from './binary.js'

// OTLP/HTTP's wire (opentelemetry-proto docs/specification.md): a body read and decoded, an
// answer encoded, both in the request's encoding. Nothing here knows sessions or runs.

/** The largest body taken once decompressed, as the specification suggests: 20 MiB. */
export const MAX_OTLP_BYTES = 20 * 1024 * 1024

export type Encoding = 'protobuf' | 'json'

/** Why a body cannot be taken: the status and the google.rpc.Code of the answer. */
export class OtlpRefusal extends Error {
  override name = 'OtlpRefusal'
  constructor(
    readonly status: 400 | 413 | 415,
    readonly code: number,
    message: string,
  ) {
    super(message)
  }
}

/** google.rpc.Code values used here. */
export const RpcCode = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  ABORTED: 10,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
  UNKNOWN: 2,
} as const

const tooLarge = () =>
  new OtlpRefusal(
    413,
    RpcCode.RESOURCE_EXHAUSTED,
    `The request body is larger than ${MAX_OTLP_BYTES} bytes once decompressed.`,
  )

/** The encoding a Content-Type names; undefined for one OTLP does not define. */
export function encodingOf(contentType: string | undefined): Encoding | undefined {
  const media = contentType?.split(';')[0]?.trim().toLowerCase()
  if (media === 'application/x-protobuf') return 'protobuf'
  if (media === 'application/json') return 'json'
  return undefined
}

/**
 * The body, decompressed, never more than MAX_OTLP_BYTES: the raw bytes are counted as they are
 * read and gunzip stops at the cap (zlib's maxOutputLength), so a gzip bomb is cut off after
 * 20 MiB of output, not inflated whole.
 */
export async function readBody(request: Request, contentEncoding: string | undefined): Promise<Uint8Array> {
  const encoding = contentEncoding?.trim().toLowerCase() || 'identity'
  if (encoding !== 'gzip' && encoding !== 'identity')
    throw new OtlpRefusal(
      415,
      RpcCode.INVALID_ARGUMENT,
      `Content-Encoding ${encoding} is not taken: send gzip or nothing.`,
    )
  const length = request.headers.get('content-length')
  if (length !== null && !(Number(length) <= MAX_OTLP_BYTES)) throw tooLarge()
  const raw = length !== null ? new Uint8Array(await request.arrayBuffer()) : await readCapped(request)
  if (encoding === 'identity') return raw
  try {
    return await promisify(gunzip)(raw, { maxOutputLength: MAX_OTLP_BYTES })
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge()
    throw new OtlpRefusal(400, RpcCode.INVALID_ARGUMENT, 'The body is not valid gzip.')
  }
}

/**
 * A body sent without a Content-Length (chunked), counted as it is read and read no further than
 * the cap. One that says its length is read whole (above): HTTP's framing holds it to that length,
 * and @hono/node-server reads it straight from the socket, without the web stream this needs.
 */
async function readCapped(request: Request): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let size = 0
  if (request.body) {
    const reader = request.body.getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > MAX_OTLP_BYTES) {
        await reader.cancel()
        throw tooLarge()
      }
      chunks.push(value)
    }
  }
  return Buffer.concat(chunks, size)
}

/** The body's sha256: a retry of the same export is the same hash (the event's idempotency key). */
export const bodyHash = (body: Uint8Array) => createHash('sha256').update(body).digest('hex')

/** An ExportLogsServiceRequest from its binary or OTLP JSON form; OtlpRefusal 400 when it is neither. */
export function decodeRequest(body: Uint8Array, encoding: Encoding): ExportLogsServiceRequest {
  try {
    // The plain form exporters send, read by hand (binary.ts); anything else, by fromBinary.
    if (encoding === 'protobuf') return readPlainRequest(body) ?? fromBinary(ExportLogsServiceRequestSchema, body)
    const json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')) as JsonValue
    return fromJson(ExportLogsServiceRequestSchema, hexIdsAsBase64(json), { ignoreUnknownFields: true })
  } catch (error) {
    throw new OtlpRefusal(
      400,
      RpcCode.INVALID_ARGUMENT,
      `The body is not an OTLP ExportLogsServiceRequest (${encoding}): ${(error as Error).message}`,
    )
  }
}

/**
 * OTLP JSON writes traceId and spanId in hex, where protobuf's JSON mapping (which fromJson
 * reads) has base64 for every bytes field: the ids are turned into base64 before it reads them;
 * one that is not hex of the right length is refused.
 */
function hexIdsAsBase64(json: JsonValue): JsonValue {
  const resources = (json as { resourceLogs?: unknown })?.resourceLogs
  if (!Array.isArray(resources)) return json
  for (const resource of resources) {
    for (const scope of asArray((resource as { scopeLogs?: unknown })?.scopeLogs)) {
      for (const record of asArray((scope as { logRecords?: unknown })?.logRecords)) {
        if (record === null || typeof record !== 'object') continue
        const r = record as Record<string, unknown>
        for (const key of ['traceId', 'spanId']) {
          const id = r[key]
          if (id === undefined || id === null) continue
          const length = key === 'traceId' ? 32 : 16
          if (typeof id !== 'string' || (id !== '' && !new RegExp(`^[0-9a-fA-F]{${length}}$`).test(id)))
            throw new Error(`${key} must be ${length} hex digits.`)
          r[key] = Buffer.from(id, 'hex').toString('base64')
        }
      }
    }
  }
  return json
}

const asArray = (value: unknown): unknown[] => (Array.isArray(value) ? value : [])

/** The 200 answer: partialSuccess only when some records were not stored. */
export function encodeResponse(
  encoding: Encoding,
  rejected: { count: number; message: string } | undefined,
): Uint8Array | string {
  const response = create(ExportLogsServiceResponseSchema, {
    ...(rejected && {
      partialSuccess: { rejectedLogRecords: BigInt(rejected.count), errorMessage: rejected.message },
    }),
  })
  return encoding === 'protobuf'
    ? toBinary(ExportLogsServiceResponseSchema, response)
    : toJsonString(ExportLogsServiceResponseSchema, response)
}

/** An error's body: a google.rpc.Status. */
export function encodeStatus(encoding: Encoding, code: number, message: string): Uint8Array | string {
  const status = create(StatusSchema, { code, message })
  return encoding === 'protobuf' ? toBinary(StatusSchema, status) : toJsonString(StatusSchema, status)
}

export const contentTypeOf = (encoding: Encoding) =>
  encoding === 'protobuf' ? 'application/x-protobuf' : 'application/json'
