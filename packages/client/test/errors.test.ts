// Error decoding: every failure a response can carry ends in one typed error, never a crash.
import { describe, expect, it } from 'vitest'
import { SessionEventsError, createSessionEventsClient } from '../src/index.js'
import { apiError, json, scriptedFetch } from './fake-fetch.js'

const sessionId = 'ses_0m5q3jz7a4GhR2sLmN8pQ1'
const eventId = 'sev_0m5q3k2x1Tz8KqPw3vXyA9'

async function failureOf(response: Response): Promise<SessionEventsError> {
  const client = createSessionEventsClient({
    apiKey: 'metorial_sk_test',
    fetch: scriptedFetch(response),
    maxRetries: 0,
  })
  const error = await client.sessionEvents.get(sessionId, eventId).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(SessionEventsError)
  return error as SessionEventsError
}

describe('error decoding', () => {
  it('decodes the API error body: status, code, message, hint, entity, request id, body', async () => {
    const body = {
      __typename: 'error',
      ok: false,
      status: 404,
      code: 'not_found',
      message: 'The requested session could not be found.',
      hint: 'Make sure the resource you are trying to access exists.',
      entity: 'session',
    }
    const error = await failureOf(json(404, body, { 'metorial-req-id': 'req_AAAAAAAAAAAAAAAAAAAAAA' }))
    expect(error).toMatchObject({
      name: 'SessionEventsError',
      status: 404,
      code: 'not_found',
      message: 'The requested session could not be found.',
      hint: 'Make sure the resource you are trying to access exists.',
      entity: 'session',
      requestId: 'req_AAAAAAAAAAAAAAAAAAAAAA',
      body,
    })
    expect(error.errors).toBeUndefined()
  })

  it('keeps the validation issues of invalid_data', async () => {
    const errors = [{ code: 'too_big', message: 'Number must be less than or equal to 100', path: ['limit'] }]
    const error = await failureOf(apiError(400, 'invalid_data', 'The provided data is invalid.', { errors }))
    expect(error).toMatchObject({ status: 400, code: 'invalid_data', errors })
  })

  it('turns a non-JSON error body (a proxy page) into malformed_response, keeping the text', async () => {
    const html = '<html><body><h1>502 Bad Gateway</h1></body></html>'
    const error = await failureOf(new Response(html, { status: 502, headers: { 'content-type': 'text/html' } }))
    expect(error).toMatchObject({
      status: 502,
      code: 'malformed_response',
      body: html,
      requestId: undefined,
    })
    expect(error.message).toContain('502')
    expect(error.message).toContain('Bad Gateway')
  })

  it('turns JSON that is not an error of this API into malformed_response', async () => {
    const error = await failureOf(json(500, { oops: true }))
    expect(error).toMatchObject({ status: 500, code: 'malformed_response', body: { oops: true } })
  })

  it('turns a success whose body is not JSON into malformed_response', async () => {
    const error = await failureOf(new Response('OK', { status: 200 }))
    expect(error).toMatchObject({ status: 200, code: 'malformed_response', body: 'OK' })
  })

  it('turns an empty success, or JSON that is not an object, into malformed_response', async () => {
    await expect(failureOf(new Response('', { status: 200 }))).resolves.toMatchObject({
      code: 'malformed_response',
    })
    await expect(failureOf(new Response(null, { status: 204 }))).resolves.toMatchObject({
      code: 'malformed_response',
    })
    await expect(failureOf(json(200, null))).resolves.toMatchObject({
      code: 'malformed_response',
      body: null,
    })
  })

  it('shortens a long body in the message but keeps all of it in body', async () => {
    const text = 'x'.repeat(5000)
    const error = await failureOf(new Response(text, { status: 503 }))
    expect(error.message.length).toBeLessThan(400)
    expect(error.body).toBe(text)
  })

  it('leaves the raw client to return errors as values', async () => {
    const body = {
      __typename: 'error',
      ok: false,
      status: 401,
      code: 'unauthorized',
      message: 'Invalid API key',
    }
    const client = createSessionEventsClient({
      apiKey: 'metorial_sk_test',
      fetch: scriptedFetch(json(401, body)),
    })
    const { data, error, response } = await client.raw.GET('/sessions/{sessionId}/events', {
      params: { path: { sessionId } },
    })
    expect(data).toBeUndefined()
    expect(error).toEqual(body)
    expect(response.status).toBe(401)
  })
})
