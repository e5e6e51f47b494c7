// The batcher with a `send` of the test's own: what goes in a batch, when, in which order, one at
// a time, and what happens to a batch that fails. The same batcher against the real API, with a
// real outage, is in run.test.ts.
import type { LogLine } from '@session-events/client'
import { SessionEventsConnectionError, SessionEventsError } from '@session-events/client'
import { describe, expect, it } from 'vitest'
import { type BatcherOptions, LogLineBatcher } from '../src/batcher.js'
import { OutageError } from '../src/outage.js'

interface Sent {
  lines: LogLine[]
  key: string
  at: number
}

/** A batcher whose sends are recorded; `fail` decides, per attempt, whether it throws. */
function recording(options: Partial<BatcherOptions> & { fail?: (attempt: number) => unknown }) {
  const sent: Sent[] = []
  let attempts = 0
  let inFlight = 0
  let mostInFlight = 0
  const failures: unknown[] = []
  const batcher = new LogLineBatcher({
    maxOutageMs: 5_000,
    retryDelayMs: 1,
    onFailure: (error) => failures.push(error),
    ...options,
    async send(lines, key) {
      inFlight++
      mostInFlight = Math.max(mostInFlight, inFlight)
      try {
        await new Promise((resolve) => setTimeout(resolve, 2))
        const failure = options.fail?.(attempts++)
        sent.push({ lines: [...lines], key, at: Date.now() })
        if (failure) throw failure
      } finally {
        inFlight--
      }
    },
  })
  return { batcher, sent, failures, mostInFlight: () => mostInFlight }
}

const lines = (count: number, prefix = 'line') =>
  Array.from({ length: count }, (_, i): LogLine => ({ type: 'stdout', line: `${prefix} ${i}` }))
const unavailable = () =>
  new SessionEventsError({ status: 503, code: 'service_unavailable', message: 'down', body: {} })

describe('LogLineBatcher', () => {
  it('sends full batches at once, 1,000 lines at most, one at a time, in order', async () => {
    const { batcher, sent, mostInFlight } = recording({})
    const all = lines(2_500)
    const started = Date.now()
    for (const line of all) batcher.push(line)
    await batcher.close()
    expect(sent.map((s) => s.lines.length)).toEqual([1_000, 1_000, 500])
    expect(sent.flatMap((s) => s.lines)).toEqual(all)
    expect(mostInFlight()).toBe(1)
    expect(new Set(sent.map((s) => s.key)).size).toBe(3)
    expect(batcher.sent).toEqual({ lines: 2_500, batches: 3 })
    expect(Date.now() - started).toBeLessThan(1_000)
  })

  it('waits up to 100 ms for more lines, then sends what it has', async () => {
    const { batcher, sent } = recording({})
    const pushedAt = Date.now()
    batcher.push({ type: 'stdout', line: 'a' })
    await new Promise((resolve) => setTimeout(resolve, 30))
    batcher.push({ type: 'stderr', line: 'b' })
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(sent).toHaveLength(1)
    expect(sent[0]!.lines.map((l) => l.line)).toEqual(['a', 'b'])
    expect(sent[0]!.at - pushedAt).toBeGreaterThanOrEqual(95)
    batcher.push({ type: 'stdout', line: 'c' })
    await batcher.close() // close() sends at once
    expect(sent.map((s) => s.lines.map((l) => l.line))).toEqual([['a', 'b'], ['c']])
  })

  it('keeps a batch under its byte budget', async () => {
    const { batcher, sent } = recording({ maxBytes: 200_000 })
    const long = Array.from(
      { length: 7 },
      (_, i): LogLine => ({
        type: 'stdout',
        line: String(i).repeat(65_536),
      }),
    )
    for (const line of long) batcher.push(line)
    await batcher.close()
    expect(sent.map((s) => s.lines.length)).toEqual([3, 3, 1])
    expect(sent.flatMap((s) => s.lines)).toEqual(long)
  })

  it('sends a failed batch again, the same lines with the same key, while new lines wait', async () => {
    const retryable = [
      unavailable(),
      new SessionEventsConnectionError('Could not reach the Session Events API: fetch failed.'),
      new SessionEventsError({
        status: 409,
        code: 'idempotency_key_in_use',
        message: 'in flight',
        body: {},
      }),
    ]
    const { batcher, sent } = recording({ fail: (attempt) => retryable[attempt], retryDelayMs: 20 })
    batcher.push({ type: 'stdout', line: 'first' })
    await new Promise((resolve) => setTimeout(resolve, 150)) // its batch is failing by now
    batcher.push({ type: 'stderr', line: 'second' })
    batcher.push({ type: 'stdout', line: 'third' })
    await batcher.close()

    const [first, ...rest] = sent
    const retries = rest.slice(0, 3)
    expect(retries.map((s) => [s.key, s.lines])).toEqual(
      Array(3).fill([first!.key, [{ type: 'stdout', line: 'first' }]]),
    )
    const last = sent.at(-1)!
    expect(sent).toHaveLength(5)
    expect(last.key).not.toBe(first!.key)
    expect(last.lines.map((l) => l.line)).toEqual(['second', 'third'])
  })

  it('stops at a refusal: told once, nothing more sent, close() rejects', async () => {
    const refusal = new SessionEventsError({
      status: 401,
      code: 'unauthorized',
      message: 'Invalid API key',
      body: {},
    })
    const { batcher, sent, failures } = recording({ fail: () => refusal })
    batcher.push({ type: 'stdout', line: 'a' })
    await expect(batcher.close()).rejects.toBe(refusal)
    expect(sent).toHaveLength(1)
    expect(failures).toEqual([refusal])
  })

  it('gives up when the outage outlasts maxOutageMs', async () => {
    const { batcher, sent, failures } = recording({
      fail: () => unavailable(),
      maxOutageMs: 150,
      retryDelayMs: 10,
    })
    batcher.push({ type: 'stdout', line: 'a' })
    const error = await batcher.close().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OutageError)
    expect((error as Error).message).toContain('HTTP 503 service_unavailable')
    expect(sent.length).toBeGreaterThan(2)
    expect(new Set(sent.map((s) => s.key)).size).toBe(1)
    expect(failures).toEqual([error])
  })

  it('asks to pause the sources over its high-water mark, and says when to resume', async () => {
    const { batcher } = recording({ highWaterMark: 100, maxDelayMs: 10 })
    expect(batcher.push({ type: 'stdout', line: 'short' })).toBe(true)
    expect(batcher.push({ type: 'stdout', line: 'x'.repeat(200) })).toBe(false)
    await batcher.drained()
    expect(batcher.push({ type: 'stdout', line: 'after' })).toBe(true)
    await batcher.close()
    expect(batcher.sent.lines).toBe(3)
  })
})
