// The options more than one command takes, the values the spec allows, and the parsers that check arguments.
import { type ListSessionEventsQuery, type ListSessionsQuery, type LogLine, specValues } from '@session-events/client'
import { InvalidArgumentError, Option } from 'commander'

export type Order = NonNullable<ListSessionEventsQuery['order']>
export type EventType = NonNullable<ListSessionEventsQuery['type']>[number]
export type SessionStatus = NonNullable<ListSessionsQuery['status']>[number]

// The values the spec allows, for --help and for checking arguments early. Keyed by the
// generated types, so the compiler fails here when the spec adds or drops one.
export const ORDERS: Record<Order, string> = { asc: 'oldest first', desc: 'newest first' }
export const EVENT_TYPES: Record<EventType, string> = {
  server_logs: 'log lines of a server run',
  server_run_error: 'the error that ended a server run',
}
export const SESSION_STATUSES: Record<SessionStatus, string> = {
  active: 'in use',
  deleted: 'deleted',
}
export const STREAMS: Record<LogLine['type'], string> = {
  stdout: 'standard output',
  stderr: 'standard error',
}
// The spec's bounds and defaults of the parameters, as the help texts say them.
export const { Limit, Order, SessionsLimit, Tail } = specValues.parameters
/** A count as the help says it: `1,000`. */
export const count = (n: number) => n.toLocaleString('en-US')

// The list's filters, which `events list` and `events tail` both take.
export function typeFilter(): Option {
  return new Option('--type <type>', describeChoices('only events of this type, repeatable', EVENT_TYPES)).argParser(
    repeatable(Object.keys(EVENT_TYPES)),
  )
}
export function serverRunFilter(): Option {
  return new Option('--server-run <id>', 'only events of this server run (srr_…), repeatable').argParser(repeatable())
}
export function serverSessionFilter(): Option {
  return new Option('--server-session <id>', 'only events of this server session (srs_…), repeatable').argParser(
    repeatable(),
  )
}

export function maxOutageOption(): Option {
  return new Option(
    '--max-outage <seconds>',
    'how long the API may stay unreachable (or answer 429, 502, 503, 504) before giving up',
  )
    .argParser(positiveNumber)
    .default(300)
}

export function positiveNumber(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value) || Number(value) === 0) throw new InvalidArgumentError('Not a positive number.')
  return Number(value)
}

export function wholeNumber(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('Not a whole number.')
  return Number(value)
}

/** An option that may be given several times; its values are collected, checked against `allowed`. */
export function repeatable<T extends string>(allowed?: string[]) {
  return (value: string, previous: T[] | undefined): T[] => {
    if (allowed && !allowed.includes(value)) throw new InvalidArgumentError(`Allowed: ${allowed.join(', ')}.`)
    return [...(previous ?? []), value as T]
  }
}

export function describeChoices(what: string, choices: Record<string, string>): string {
  return `${what}: ${Object.entries(choices)
    .map(([value, meaning]) => `${value} (${meaning})`)
    .join(', ')}`
}
