import { describe, expect, it } from 'vitest'
import { checkResponse, operations, spec } from './support/spec.js'

// The conformance checker holds responses to the spec; here it is held to its own promise, on
// responses made by hand from the spec's own examples, so that a lenient checker cannot pass
// a broken API. (The examples are the spec's; nothing here restates a schema.)

const op = operations.find((o) => Object.keys(o.responses).includes('200') && o.parameters.some((p) => p.in === 'query'))!
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
    expect((await checkResponse(op, respond(example('200'), goodHeaders(), 418))).problems.join()).toMatch(/status 418 is not declared/)
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
    expect((await checkResponse(op, respond(example('200'), headers))).problems.join()).toMatch(/content type text\/plain/)
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
