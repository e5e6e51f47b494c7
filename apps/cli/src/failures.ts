// How a failure reads on stderr: the API's message with its validation issues, hint, status, code
// and request id; or why the API could not be reached.
import { SessionEventsConnectionError, SessionEventsError } from '@session-events/client'
import { OutageError } from './outage.js'

export function describeFailure(error: unknown): string {
  if (error instanceof SessionEventsError) {
    const lines = [`session-events: ${error.message}`]
    for (const issue of error.errors ?? []) lines.push(`  ${issue.path.join('.') || '(request)'}: ${issue.message}`)
    if (error.hint) lines.push(error.hint)
    const request = error.requestId ? `, request ${error.requestId}` : ''
    lines.push(`(HTTP ${error.status}, ${error.code}${request})`)
    return lines.join('\n')
  }
  if (error instanceof SessionEventsConnectionError || error instanceof OutageError)
    return `session-events: ${error.message}`
  return `session-events: unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`
}
