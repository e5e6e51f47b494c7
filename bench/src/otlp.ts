import { create, toBinary, toJsonString } from '@bufbuild/protobuf'
import { ExportLogsServiceRequestSchema } from '@session-events/api/internal/generated/otlp/opentelemetry/proto/collector/logs/v1/logs_service_pb.js'
import { SeverityNumber } from '@session-events/api/internal/generated/otlp/opentelemetry/proto/logs/v1/logs_pb.js'
import { logLinesOf } from '@session-events/api/internal/otlp/records.js'
import type { LogLine } from '@session-events/server-stubs'
import {
  freshLiveStore,
  logLines,
  removeLiveStore,
  sessionsWithRuns,
  startApi,
  type ApiProcess,
  type LiveStore,
  type StoreKind,
} from './api.js'
import { inTurn, median, type LoadRequest } from './load.js'
import { postLoad } from './post-load.js'
import { failuresOf, SESSIONS } from './writes.js'

// OTLP intake: log records per second through POST /v1/logs (OTLP/HTTP), protobuf and JSON, 100
// records a request, beside appends of 100 lines through the JSON API (POST
// /sessions/{id}/events), without and with an Idempotency-Key (every OTLP request is keyed: its
// body's hash). Each store a fresh one; SESSIONS service instances (one session and run each,
// made by their first request) against SESSIONS sessions of one run each; 32 connections.
// Every OTLP request is a new body (its first record's time moved on, as an exporter's next batch
// is), so that none is a retry the idempotency key would turn into a replay. A record is stored as a
// line with its time and level: append_json_as_records appends those same lines (keyed, as every
// OTLP request is), the same rows, so that its ratio is of the intake's own cost alone.

export const OTLP_TARGETS = [
  'append_json',
  'append_json_keyed',
  'append_json_as_records',
  'otlp_protobuf',
  'otlp_json',
] as const
export type OtlpTarget = (typeof OTLP_TARGETS)[number]
export const OTLP_TARGET_LABELS: Record<OtlpTarget, string> = {
  append_json: 'POST /sessions/{id}/events, 100 lines (JSON API)',
  append_json_keyed: '… with an Idempotency-Key on every request',
  append_json_as_records: '… keyed, each line with the time and level its record gives it (what OTLP stores)',
  otlp_protobuf: 'POST /v1/logs, 100 records, application/x-protobuf',
  otlp_json: 'POST /v1/logs, 100 records, application/json (OTLP JSON)',
}

export interface OtlpBenchSettings {
  rounds: number
  durationS: number
  warmupS: number
  connections: number
}

export interface OtlpBenchResult {
  settings: OtlpBenchSettings
  records: number
  /** Per store: lines (records) per second, p99 and errors of each target, and protobuf ÷ JSON append. */
  stores: Partial<
    Record<
      StoreKind,
      {
        targets: Record<
          OtlpTarget,
          { linesPerS: number; p99Ms: number; errors: number; failures: Record<string, number> }
        >
        /** `otlp_protobuf/append_json` and the others, medians of the rounds' ratios of lines/s. */
        ratios: Record<string, number>
      }
    >
  >
  bodyBytes: Record<OtlpTarget, number>
}

const RECORDS = 100

/** An ExportLogsServiceRequest of one service instance with `RECORDS` records, the writes suite's lines. */
function exportRequest(instance: number) {
  return create(ExportLogsServiceRequestSchema, {
    resourceLogs: [
      {
        resource: {
          attributes: [
            {
              key: 'service.name',
              value: { value: { case: 'stringValue' as const, value: `bench-otlp-${instance}` } },
            },
            {
              key: 'service.instance.id',
              value: { value: { case: 'stringValue' as const, value: `bench-${instance}` } },
            },
          ],
        },
        scopeLogs: [
          {
            scope: { name: 'bench' },
            logRecords: logLines(RECORDS).map((l, i) => ({
              timeUnixNano: BigInt(Date.now()) * 1_000_000n + BigInt(i),
              severityNumber: l.type === 'stderr' ? SeverityNumber.WARN : SeverityNumber.INFO,
              severityText: l.type === 'stderr' ? 'WARN' : 'INFO',
              body: { value: { case: 'stringValue' as const, value: l.line } },
            })),
          },
        ],
      },
    ],
  })
}

/** The lines the intake stores for a request's records (apps/api's own logLinesOf): the text, the stream, the time and the level. */
const storedLinesOf = (request: ReturnType<typeof exportRequest>) => logLinesOf(request.resourceLogs[0]!)

let serial = 0

/**
 * A new body of the same export, as an exporter's next batch is: its first record's time moved on
 * by `n` ns. time_unix_nano is fixed64 (8 bytes, little-endian), so the bytes are the same length
 * and only those 8 change; the body stays in the plain form an exporter sends (an unknown field
 * instead would have sent every request down fromBinary's path, as no exporter does).
 */
function laterBody(bytes: Buffer, at: number, time: bigint, n: number): Buffer {
  const copy = Buffer.from(bytes)
  copy.writeBigUInt64LE(time + BigInt(n), at)
  return copy
}

/** Where in the binary body the first record's time_unix_nano is (the only place its 8 bytes are). */
function timeOffset(bytes: Buffer, time: bigint): number {
  const pattern = Buffer.alloc(8)
  pattern.writeBigUInt64LE(time)
  const at = bytes.indexOf(pattern)
  if (at < 0 || bytes.indexOf(pattern, at + 1) >= 0)
    throw new Error('otlp: the first record’s time is not once in the body')
  return at
}

export async function otlpSuite(
  settings: OtlpBenchSettings,
  postgres: boolean,
  log: (line: string) => void,
): Promise<OtlpBenchResult> {
  const stores: StoreKind[] = postgres ? ['sqlite', 'postgres'] : ['sqlite']
  const lives: LiveStore[] = []
  const apis: ApiProcess[] = []
  const result: OtlpBenchResult = {
    settings,
    records: RECORDS,
    stores: {},
    bodyBytes: {} as OtlpBenchResult['bodyBytes'],
  }
  try {
    for (const store of stores) {
      const live = await freshLiveStore(store, 'otlp')
      lives.push(live)
      const api = await startApi({ name: `api_${store}_otlp`, databaseUrl: live.databaseUrl })
      apis.push(api)
      const auth = { authorization: `Bearer ${live.secretKey}` }
      const places = await sessionsWithRuns(api.url, live.secretKey, SESSIONS)
      const append = (keyed: boolean, lines: readonly LogLine[] = logLines(RECORDS)) =>
        places.map(
          (p): LoadRequest => ({
            method: 'POST',
            path: '/sessions/' + p.sessionId + '/events',
            headers: auth,
            body: JSON.stringify({ server_run_id: p.runId, log_lines: lines }),
            idempotencyKeys: keyed,
          }),
        )
      const exports = Array.from({ length: SESSIONS }, (_, i) => exportRequest(i))
      const protobuf = exports.map((request): LoadRequest => {
        const bytes = Buffer.from(toBinary(ExportLogsServiceRequestSchema, request))
        const time = request.resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!.timeUnixNano
        const at = timeOffset(bytes, time)
        return {
          method: 'POST',
          path: '/v1/logs',
          headers: { ...auth, 'content-type': 'application/x-protobuf' },
          body: bytes,
          newBody: () => laterBody(bytes, at, time, ++serial),
        }
      })
      const json = exports.map((request): LoadRequest => {
        const text = toJsonString(ExportLogsServiceRequestSchema, request)
        // The same for OTLP JSON: the first record's time (a string of decimal ns) moved on.
        const time = request.resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!.timeUnixNano
        const field = `"timeUnixNano":"${time}"`
        const before = text.slice(0, text.indexOf(field))
        const after = text.slice(before.length + field.length)
        return {
          method: 'POST',
          path: '/v1/logs',
          headers: { ...auth, 'content-type': 'application/json' },
          body: text,
          newBody: () => `${before}"timeUnixNano":"${time + BigInt(++serial)}"${after}`,
        }
      })
      const requests: Record<OtlpTarget, LoadRequest[]> = {
        append_json: append(false),
        append_json_keyed: append(true),
        append_json_as_records: append(true, storedLinesOf(exports[0]!)),
        otlp_protobuf: protobuf,
        otlp_json: json,
      }
      for (const target of OTLP_TARGETS) result.bodyBytes[target] = Buffer.byteLength(requests[target][0]!.body!)
      // The service instances' sessions and runs are made by their first export, before the rounds.
      for (const r of [...protobuf, ...json]) {
        const response = await fetch(api.url + r.path, {
          method: 'POST',
          headers: r.headers!,
          body: r.newBody!(),
        })
        if (response.status !== 200) throw new Error(`POST /v1/logs: ${response.status} ${await response.text()}`)
        const answer = await response.text()
        if (answer !== '' && answer !== '{}') throw new Error(`POST /v1/logs: a partial success: ${answer}`)
      }

      const run = (target: OtlpTarget, durationS: number) =>
        postLoad({ url: api.url, requests: requests[target], connections: settings.connections, durationS })
      for (const target of OTLP_TARGETS) await run(target, settings.warmupS)
      const rounds = Object.fromEntries(
        OTLP_TARGETS.map((t) => [t, [] as Awaited<ReturnType<typeof run>>[]]),
      ) as Record<OtlpTarget, Awaited<ReturnType<typeof run>>[]>
      for (let round = 0; round < settings.rounds; round++) {
        const line: string[] = []
        for (const target of inTurn(OTLP_TARGETS, round)) {
          const r = await run(target, settings.durationS)
          rounds[target].push(r)
          line.push(`${target} ${Math.round(r.rps * RECORDS).toLocaleString('en')}`)
        }
        log(`  ${store}, round ${round + 1}/${settings.rounds}: ${line.join(', ')} lines/s`)
      }
      const targets = Object.fromEntries(
        OTLP_TARGETS.map((t) => {
          const all = rounds[t]
          return [
            t,
            {
              linesPerS: median(all.map((r) => r.rps * RECORDS)),
              p99Ms: median(all.map((r) => r.p99Ms)),
              errors: all.reduce((n, r) => n + r.errors, 0),
              failures: Object.assign({}, ...all.map(failuresOf)) as Record<string, number>,
            },
          ]
        }),
      ) as Record<OtlpTarget, { linesPerS: number; p99Ms: number; errors: number; failures: Record<string, number> }>
      const ratio = (a: OtlpTarget, b: OtlpTarget) =>
        median(rounds[a].map((r, i) => r.rps / (rounds[b][i]?.rps ?? NaN)))
      result.stores[store] = {
        targets,
        ratios: {
          'otlp_protobuf/append_json': ratio('otlp_protobuf', 'append_json'),
          'otlp_json/append_json': ratio('otlp_json', 'append_json'),
          'otlp_protobuf/append_json_keyed': ratio('otlp_protobuf', 'append_json_keyed'),
          'otlp_protobuf/append_json_as_records': ratio('otlp_protobuf', 'append_json_as_records'),
          'otlp_json/append_json_as_records': ratio('otlp_json', 'append_json_as_records'),
        },
      }
    }
    return result
  } finally {
    for (const api of apis) await api.stop().catch(() => {})
    for (const live of lives) await removeLiveStore(live)
  }
}
