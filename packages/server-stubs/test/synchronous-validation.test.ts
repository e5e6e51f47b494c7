import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi'
import { describe, expect, it, vi } from 'vitest'
import { routes } from '../src/index.js'
import { validatedSynchronously } from '../src/synchronous-validation.js'

// The routes' request schemas are parsed with zod's synchronous parse (its compiled parser for an
// object's shape), with the same results as the asynchronous parse @hono/zod-openapi asks for.

const appendBody = (lines: unknown[]) => ({ server_run_id: 'srr_012345678ABCDEFGHIJklm', log_lines: lines })

describe('validatedSynchronously', () => {
  const schema = validatedSynchronously(routes.createSessionEvent).request.body.content['application/json'].schema

  it('answers as zod’s asynchronous parse does, valid or not, and parses without walking the shape asynchronously', async () => {
    const bodies = [
      appendBody([{ type: 'stdout', line: 'a' }]),
      appendBody([{ type: 'stdout', line: 'a', time: '2026-12-07T10:00:00.000Z', severity_text: 'INFO' }]),
      appendBody([]),
      appendBody([{ type: 'stdin', line: 'a' }]),
      appendBody([{ type: 'stdout', line: 'a', trace_id: 'not hex' }]),
      { log_lines: 'nope' },
      null,
    ]
    for (const body of bodies) {
      const viaRoute = await schema.safeParseAsync(body)
      // zod's own asynchronous parse of the same schema, not the one put in its place.
      const viaZod = await z.core.safeParseAsync(schema, body)
      expect(viaRoute.success, JSON.stringify(body)).toBe(viaZod.success)
      if (viaRoute.success) expect(viaRoute.data).toEqual(viaZod.data)
      else expect(viaRoute.error!.issues).toEqual(viaZod.error!.issues)
    }
    // The synchronous parse is the one at work.
    const sync = vi.spyOn(schema, 'safeParse')
    await schema.safeParseAsync(bodies[0])
    expect(sync).toHaveBeenCalledTimes(1)
    sync.mockRestore()
  })

  it('leaves a schema with an asynchronous refinement to the asynchronous parse', async () => {
    const slow = z.object({ name: z.string().refine(async (s) => s.length > 1, 'too short') })
    const route = validatedSynchronously(
      createRoute({
        method: 'post',
        path: '/x',
        request: { body: { content: { 'application/json': { schema: slow } } } },
        responses: { 200: { description: 'ok' } },
      }),
    )
    const app = new OpenAPIHono().openapi(route, (c) => c.json(c.req.valid('json'), 200))
    const post = (body: unknown) =>
      app.request('/x', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    expect(await (await post({ name: 'ab' })).json()).toEqual({ name: 'ab' })
    expect((await post({ name: 'a' })).status).toBe(400)
  })

  it('changes a route once, however often it is handed over', () => {
    const once = Object.getOwnPropertyDescriptor(schema, 'safeParseAsync')!.value as unknown
    validatedSynchronously(routes.createSessionEvent)
    expect(Object.getOwnPropertyDescriptor(schema, 'safeParseAsync')!.value).toBe(once)
  })
})
