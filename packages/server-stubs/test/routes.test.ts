import { OpenAPIHono } from '@hono/zod-openapi'
import { loadSpec } from '@session-events/openapi'
import { describe, expect, it } from 'vitest'
import { registerRoutes, routes, type SessionEventsHandlers } from '../src/index.js'

const spec = loadSpec()

// Handlers that echo what the generated routes validated, to see the routes work on a real app.
const echo: SessionEventsHandlers = {
  listSessionEvents: (c) =>
    c.json({ __typename: 'list', items: [], pagination: { has_more_before: false, has_more_after: false, next_cursor: JSON.stringify(c.req.valid('query')), previous_cursor: null } }, 200),
  getSessionEvent: (c) => c.json({ __typename: 'error', ok: false, status: 404, code: 'not_found', message: c.req.valid('param').sessionEventId }, 404),
}

function appWithRoutes() {
  const app = new OpenAPIHono({
    defaultHook: (result, c) => {
      if (!result.success) return c.json({ issues: result.error.issues.map((i) => i.path.join('.')) }, 400)
    },
  })
  return registerRoutes(app, echo)
}

const pathParams = (path: string) => path.replace(/\{(\w+)\}/g, ':$1')
const SES = 'ses_0m5q3jz7a4GhR2sLmN8pQ1'
const SEV = 'sev_0m5q3k2x1Tz8KqPw3vXyA9'
const SRR = 'srr_0m5q3k1f8Ab3Cd4Ef5Gh6I'

describe('the generated routes', () => {
  it('cover every operation of the spec, keyed by operationId', () => {
    const specOps = Object.values<any>(spec.paths).flatMap((item) => Object.values<any>(item).map((op) => op.operationId))
    expect(Object.keys(routes).sort()).toEqual(specOps.sort())
    for (const [path, item] of Object.entries<any>(spec.paths)) {
      for (const [method, op] of Object.entries<any>(item)) {
        const route = routes[op.operationId as keyof typeof routes]
        expect([route.method, route.path]).toEqual([method, path])
      }
    }
  })

  it('register on an OpenAPIHono app whose document matches the source spec', () => {
    const doc = appWithRoutes().getOpenAPI31Document({ openapi: '3.1.0', info: spec.info })
    const shape = (d: any) =>
      Object.entries<any>(d.paths).flatMap(([path, item]) =>
        Object.entries<any>(item).map(([method, op]) => ({
          path,
          method,
          operationId: op.operationId,
          parameters: (op.parameters ?? [])
            .map((p: any) => (p.$ref ? spec.components.parameters[p.$ref.split('/').pop()] : p))
            .map((p: any) => `${p.in}:${p.name}:${p.required ? 'required' : 'optional'}`)
            .sort(),
          statuses: Object.keys(op.responses).sort(),
        })),
      )
    expect(shape(doc)).toEqual(shape(spec))
    expect(Object.keys(doc.components?.schemas ?? {}).sort()).toEqual(Object.keys(spec.components.schemas).sort())
  })

  it('validate path and query parameters as the spec says', async () => {
    const app = appWithRoutes()
    const list = (query: string) => app.request(`${pathParams(`/sessions/${SES}/events`)}${query}`)

    const ok = await list(`?limit=5&order=desc&server_run_id=${SRR}&type=server_logs&unknown=1`)
    expect(ok.status).toBe(200)
    expect(JSON.parse(((await ok.json()) as any).pagination.next_cursor)).toEqual({
      limit: 5,
      order: 'desc',
      server_run_id: [SRR],
      type: ['server_logs'],
    })
    const twice = await list(`?server_run_id=${SRR}&server_run_id=${SRR}`)
    expect(JSON.parse(((await twice.json()) as any).pagination.next_cursor).server_run_id).toEqual([SRR, SRR])

    expect((await list('?limit=0')).status).toBe(400)
    expect((await list('?limit=101')).status).toBe(400)
    expect(await (await list('?limit=x&order=up&type=nope')).json()).toEqual({ issues: ['limit', 'order', 'type.0'] })
    expect((await app.request('/sessions/not-an-id/events')).status).toBe(400)
    expect((await app.request(`/sessions/${SES}/events/${SEV}`)).status).toBe(404)
    expect((await app.request(`/sessions/${SES}/events/sev_bad`)).status).toBe(400)
  })
})

// The handler map is typed by the routes: these lines are compile errors, checked by `npm run typecheck`.
// @ts-expect-error a handler is missing
export const missing: SessionEventsHandlers = { listSessionEvents: echo.listSessionEvents }
export const wrongStatus: SessionEventsHandlers = {
  ...echo,
  // @ts-expect-error 418 is not a status the spec declares for getSessionEvent
  getSessionEvent: (c) => c.json({ __typename: 'error', ok: false, status: 418, code: 'not_found', message: 'x' }, 418),
}
export const wrongBody: SessionEventsHandlers = {
  ...echo,
  // @ts-expect-error the body of a 200 must be a SessionEvent
  getSessionEvent: (c) => c.json({ id: 1 }, 200),
}
