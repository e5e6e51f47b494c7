import { describe, expect, it } from 'vitest'
import { checkResponse, EVENT_STREAM, operation, operations, spec } from './support/spec.js'

// The conformance checker holds responses to the spec; here it is held to its own promise, on
// responses made by hand from the spec's own examples, so that a lenient checker cannot pass
// a broken API. (The examples are the spec's; nothing here restates a schema.)

const op = operations.find(
  (o) => Object.keys(o.responses).includes('200') && o.parameters.some((p) => p.in === 'query'),
)!
const example = (status: string) => {
  const media = spec.paths[op.path][op.method.toLowerCase()].responses[status].content['application/json']
  const named = Object.values(media.examples ?? {})[0] as any
  return named.$ref ? spec.components.examples[named.$ref.split('/').pop()].value : named.value
}
const goodHeaders = () =>
  new Headers({
    'content-type': 'application/json; charset=UTF-8',
    'metorial-req-id': 'req_0123456789abcdefABCDEF',
    'metorial-version': '2025-01-01',
    'RateLimit-Limit': '10',
    'RateLimit-Remaining': '9',
    'RateLimit-Reset': '60',
  })
const respond = (body: unknown, headers = goodHeaders(), status = 200) =>
  new Response(typeof body === 'string' ? body : JSON.stringify(body), { status, headers })

describe('checkResponse', () => {
  it('passes the spec’s own example with the declared headers', async () => {
    expect((await checkResponse(op, respond(example('200')))).problems).toEqual([])
  })

  it('fails a status the spec does not declare', async () => {
    expect((await checkResponse(op, respond(example('200'), goodHeaders(), 418))).problems.join()).toMatch(
      /status 418 is not declared/,
    )
  })

  it('fails a missing required header and an invalid header value', async () => {
    const headers = goodHeaders()
    headers.delete('metorial-req-id')
    headers.set('RateLimit-Remaining', '-1')
    const problems = (await checkResponse(op, respond(example('200'), headers))).problems.join('\n')
    expect(problems).toMatch(/metorial-req-id is required/)
    expect(problems).toMatch(/RateLimit-Remaining/)
  })

  it('fails a header the spec does not declare, but not transport headers, whatever their case', async () => {
    const headers = goodHeaders()
    headers.set('X-Powered-By', 'Hono')
    headers.set('Date', new Date().toUTCString())
    headers.set('Retry-After', '1')
    const problems = (await checkResponse(op, respond(example('200'), headers))).problems
    expect(problems).toHaveLength(2)
    expect(problems.join()).toMatch(/x-powered-by/)
    expect(problems.join()).toMatch(/retry-after/)
  })

  it('fails a content type the spec does not declare, and a body that is not JSON', async () => {
    const headers = goodHeaders()
    headers.set('content-type', 'text/plain')
    expect((await checkResponse(op, respond(example('200'), headers))).problems.join()).toMatch(
      /content type text\/plain/,
    )
    expect((await checkResponse(op, respond('{"__typename": "list",'))).problems.join()).toMatch(/not JSON/)
  })

  it('fails a body that does not validate, naming where', async () => {
    const body = structuredClone(example('200'))
    body.items[0].created_at = 'yesterday'
    delete body.pagination
    const problems = (await checkResponse(op, respond(body))).problems.join('\n')
    expect(problems).toMatch(/created_at/)
    expect(problems).toMatch(/pagination/)
  })
})

// The stream of streamSessionEvents: its body is held to what the spec says of it in words
// (EVENT_STREAM), on the spec's own example, and on the example broken one way at a time.
describe('checkResponse on a stream (text/event-stream)', () => {
  const stream = operation('streamSessionEvents')
  const media = spec.paths[stream.path].get.responses['200'].content[EVENT_STREAM.mediaType]
  const exampleText = (Object.values(media.examples) as { value: string }[])[0]!.value
  const streamHeaders = () => {
    const headers = goodHeaders()
    headers.set('content-type', 'text/event-stream')
    headers.set('cache-control', 'no-cache')
    return headers
  }
  /** A stream that sends `text` and then stays open, as the server's does. */
  const live = (text: string, headers = streamHeaders()) =>
    new Response(
      new ReadableStream<Uint8Array>({
        start: (c) => c.enqueue(new TextEncoder().encode(text)),
      }),
      { status: 200, headers },
    )
  const check = (text: string, options = {}) => checkResponse(stream, live(text), { timeoutMs: 300, ...options })
  // The example ends with a keep-alive comment whose blank line YAML's `|` drops: left out.
  const [retry, position, event] = exampleText.split(/(?<=\n\n)/)
  const keepAlive = ': keep-alive\n\n'

  it('reads the spec’s example as far as asked and passes it, without waiting for the end of a stream that does not end', async () => {
    const head = await check(exampleText)
    expect(head.problems).toEqual([])
    expect(head.text).toBe(retry! + position!)
    expect(head.body).toEqual([])
    const all = await check(exampleText, { until: () => false })
    expect(all.problems.join()).toMatch(/did not get as far/)
    expect(all.text).toBe(retry! + position! + event!)
    expect((all.body as { id: string }[]).map((e) => e.id)).toEqual([JSON.parse(event!.split('data: ')[1]!).id])
  })

  it('fails a stream that does not start with retry:, or sends no position', async () => {
    expect((await check(position! + event!)).problems.join()).toMatch(/does not start with a retry/)
    expect((await check(retry! + event!)).problems.join()).toMatch(/did not get as far/)
    const ended = await checkResponse(stream, new Response(retry! + event!, { headers: streamHeaders() }))
    expect(ended.problems.join()).toMatch(/ended before its session.position/)
    expect(
      (
        await checkResponse(stream, new Response(retry! + position!.slice(0, -1), { headers: streamHeaders() }))
      ).problems.join(),
    ).toMatch(/ended inside a message/)
  })

  it('fails an event whose data does not validate, is not JSON or names another id, and events out of order', async () => {
    const data = JSON.parse(event!.split('data: ')[1]!)
    const withData = (value: string, id = data.id) => `id: ${id}\nevent: session.event\ndata: ${value}\n\n`
    const until = () => false
    expect(
      (
        await check(retry! + position! + withData(JSON.stringify({ ...data, created_at: 'yesterday' })), { until })
      ).problems.join(),
    ).toMatch(/created_at/)
    expect((await check(retry! + position! + withData('{"object":'), { until })).problems.join()).toMatch(/not JSON/)
    expect(
      (
        await check(retry! + position! + withData(JSON.stringify(data), `sev_${'1'.repeat(22)}`), { until })
      ).problems.join(),
    ).toMatch(/the event's id/)
    expect((await check(retry! + position! + event! + event!, { until })).problems.join()).toMatch(
      /not in id order, or sent twice/,
    )
    // An event before the position that stands after it.
    expect((await check(retry! + event! + position!)).problems.join()).toMatch(/stands before an event sent already/)
  })

  it('fails messages and comments the spec does not describe', async () => {
    expect((await check(retry! + 'event: session.other\ndata: x\n\n' + position!)).problems.join()).toMatch(
      /does not describe/,
    )
    expect((await check(retry! + ': hello\n\n' + position!)).problems.join()).toMatch(
      /comment the spec does not describe/,
    )
    expect((await check(retry! + position!.replace('data:\n', 'data: x\n'))).problems.join()).toMatch(/empty data/)
    expect((await check(retry! + keepAlive + position!)).problems).toEqual([])
  })

  it('holds the headers and the content type to the spec as for any response', async () => {
    const headers = streamHeaders()
    headers.set('cache-control', 'max-age=60')
    headers.delete('metorial-version')
    const problems = (await checkResponse(stream, live(exampleText, headers), { timeoutMs: 300 })).problems.join('\n')
    expect(problems).toMatch(/Cache-Control/)
    expect(problems).toMatch(/metorial-version is required/)
  })
})
