#!/usr/bin/env node
// The README's picture of the page (docs/web-page.png): the API in process with this build,
// a session with two runs written through the API, and the page in the machine's Chromium.
// `npm run screenshot --workspace=@session-events/web`, after `npm run build`.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createApp, openStore, seed, serve } from '@session-events/api'
import { createSessionEventsClient } from '@session-events/client'
import { chromium } from 'playwright-core'

const out = fileURLToPath(new URL('../../../docs/web-page.png', import.meta.url))
const executablePath = [process.env.CHROMIUM_PATH, '/usr/bin/chromium'].find((p) => p && existsSync(p))
if (!executablePath) throw new Error('no Chromium: apt-get install -y chromium')

const store = await openStore('sqlite::memory:')
const key = (await seed(store, { instances: 1, sessions: 0, events: 0 })).instances[0].secret_key
const shutdown = new AbortController()
const app = createApp({
  store,
  config: { logLevel: 'silent', rateLimit: false, shedLoadAfterMs: false },
  shutdown: shutdown.signal,
  webDir: fileURLToPath(new URL('../dist', import.meta.url)),
})
const server = await serve({ app, host: '127.0.0.1', port: 0 })
const client = createSessionEventsClient({ apiKey: key, baseUrl: server.url })

const session = await client.sessions.create({ metadata: { user: 'ada@example.com' } })
const github = await client.serverRuns.start(session.id, { type: 'external', server: { name: 'github-mcp' } })
const search = await client.serverRuns.start(session.id, { type: 'external', server: { name: 'brave-search' } })
const out1 = (line) => ({ type: 'stdout', line })
const err = (line) => ({ type: 'stderr', line })
const write = (run, lines) => client.events.append(session.id, { server_run_id: run.id, log_lines: lines })
await write(github, [
  out1('Server listening on stdio'),
  out1('\u001b[32m✓\u001b[0m MCP handshake complete (protocol 2025-03-26)'),
  out1('tools/list -> 14 tools'),
  err('\u001b[33mwarn\u001b[0m: GITHUB_TOKEN has no repo scope, falling back to public data'),
])
await write(search, [out1('Server listening on stdio'), out1('tools/list -> 2 tools')])
for (let i = 0; i < 12; i++) {
  await write(github, [
    out1(`tools/call search_issues {"query":"is:open label:bug","page":${i + 1}}`),
    out1(
      `GET https://api.github.com/repos/metorial/metorial/issues?page=${i + 1} \u001b[32m200\u001b[0m (${120 + i * 7} ms)`,
    ),
  ])
  if (i % 4 === 1) await write(search, [out1(`tools/call web_search {"q":"mcp sse reconnect ${i}"}`)])
}
await write(search, [err('\u001b[31merror\u001b[0m: upstream returned 502 Bad Gateway')])
await client.serverRuns.stop(session.id, search.id, {
  status: 'failed',
  error: { code: 'process_exited', message: 'The server exited with code 1 after 3 failed requests.' },
})

const browser = await chromium.launch({
  executablePath,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
})
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 640 }, deviceScaleFactor: 1 })
  await page.goto(`${server.url}/?session=${session.id}`)
  await page.getByLabel('Secret key').fill(key)
  await page.getByRole('button', { name: 'Continue' }).click()
  await page.locator('.connection[data-state="live"]').waitFor()
  await write(github, [out1('prompt completed in 412 ms')])
  await page.locator('.log .row', { hasText: 'prompt completed' }).waitFor()
  await page.getByLabel('Search').fill('issues')
  await page.waitForTimeout(300)
  await page.screenshot({ path: out })
  console.log(`wrote ${out}`)
} finally {
  await browser.close()
  shutdown.abort()
  await server.close({ timeoutMs: 500 })
  await store.close()
}
