import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/app.js'
import { PAGE_CSP } from '../src/web-page.js'
import { fixture, silent, testSettings, type Fixture } from './helpers.js'

// The page that watches a session (apps/web), as the API serves it: `/` and the files under
// /app/ of a built page (here a small one written by the test: apps/web's own suite drives the
// real one in a browser), with a Content-Security-Policy; every other path answers the API's 404.
// Without a built page, `/` says how to build it.

let f: Fixture
let dir: string
let app: ReturnType<typeof createApp>

beforeAll(async () => {
  f = await fixture({ sessions: 1, events: 2 })
  dir = mkdtempSync(join(tmpdir(), 'session-events-web-'))
  writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="/app/index-abc.js"></script>')
  writeFileSync(join(dir, 'index-abc.js'), 'console.log(1)')
  mkdirSync(join(dir, 'fonts'))
  writeFileSync(join(dir, 'fonts', 'mono.woff2'), 'font')
  writeFileSync(join(dir, 'index-abc.css'), 'body{}')
  app = createApp({ store: f.store, logger: silent, config: testSettings, webDir: dir })
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('the page at /', () => {
  it('serves index.html with a policy that allows no inline script and no other origin', async () => {
    const res = await app.request('/')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8')
    expect(await res.text()).toContain('/app/index-abc.js')
    const csp = res.headers.get('content-security-policy')
    expect(csp).toBe(PAGE_CSP)
    expect(csp).toContain("default-src 'self'")
    expect(csp).toContain("script-src 'self'")
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:|\*/)
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    // The same page for a session's link: the query is the page's business.
    expect((await app.request('/?session=ses_0m5q3jz7a4GhR2sLmN8pQ1&event=sev_x')).status).toBe(200)
  })

  it('serves the built files under /app/ with their types, for good (their names change with them)', async () => {
    const js = await app.request('/app/index-abc.js')
    expect(js.status).toBe(200)
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=UTF-8')
    expect(js.headers.get('cache-control')).toContain('immutable')
    expect(js.headers.get('x-content-type-options')).toBe('nosniff')
    expect(await js.text()).toBe('console.log(1)')
    expect((await app.request('/app/index-abc.css')).headers.get('content-type')).toBe('text/css; charset=UTF-8')
    expect((await app.request('/app/fonts/mono.woff2')).headers.get('content-type')).toBe('font/woff2')
  })

  it('answers the API 404 for anything else, index.html and paths that climb out included', async () => {
    for (const path of [
      '/app/missing.js',
      '/app/index.html',
      '/index.html',
      '/app/../package.json',
      '/app/%2e%2e/x',
      '/app',
    ]) {
      const res = await app.request(path)
      expect(res.status, path).toBe(404)
      expect(await res.json(), path).toMatchObject({ __typename: 'error', code: 'not_found', entity: 'endpoint' })
    }
  })

  it('says how to build the page when it is not built, not a 500', async () => {
    const bare = createApp({ store: f.store, logger: silent, config: testSettings, webDir: join(dir, 'nothing') })
    const res = await bare.request('/')
    expect(res.status).toBe(404)
    expect(res.headers.get('content-type')).toBe('text/plain; charset=UTF-8')
    expect(await res.text()).toMatch(/not built: run `npm run build`/)
  })

  it('keeps nosniff on the JSON answers, errors included', async () => {
    const ok = await f.get('/sessions')
    expect(ok.status).toBe(200)
    expect(ok.headers.get('x-content-type-options')).toBe('nosniff')
    const refused = await f.get('/sessions', null)
    expect(refused.status).toBe(401)
    expect(refused.headers.get('x-content-type-options')).toBe('nosniff')
  })
})
