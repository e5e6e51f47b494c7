// A process that logs through the OpenTelemetry JS SDK and exports with a real OTLP/HTTP
// exporter, configured only by the environment (OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_COMPRESSION), as a server would be.
//   node otlp-exporter.mjs http|proto '<resource attributes as JSON>' '<records as JSON: [[severityNumber, body], …]>'
import { OTLPLogExporter as JsonExporter } from '@opentelemetry/exporter-logs-otlp-http'
import { OTLPLogExporter as ProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs'

const [protocol, attributes, records] = process.argv.slice(2)
const exporter = protocol === 'proto' ? new ProtoExporter() : new JsonExporter()
let failed
const watched = {
  export: (logs, done) =>
    exporter.export(logs, (result) => {
      if (result.code !== 0) failed = result.error ?? new Error('export failed')
      done(result)
    }),
  shutdown: () => exporter.shutdown(),
  forceFlush: () => exporter.forceFlush?.(),
}
const provider = new LoggerProvider({
  resource: resourceFromAttributes(JSON.parse(attributes)),
  processors: [
    new BatchLogRecordProcessor({ exporter: watched, maxExportBatchSize: 1000, scheduledDelayMillis: 60_000 }),
  ],
})
const logger = provider.getLogger('otlp-test')
for (const [severityNumber, body] of JSON.parse(records)) {
  logger.emit({ severityNumber, severityText: severityNumber >= 13 ? 'WARN' : 'INFO', body })
}
await provider.forceFlush()
await provider.shutdown()
if (failed) {
  console.error(String(failed?.message ?? failed))
  process.exit(1)
}
