import { readdirSync, readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newSession, startApi, type Api } from './support/api.js'
import { chromiumPath, INSTALL_CHROMIUM, launchChromium } from './support/browser.js'

// The page as a person uses it, in headless Chromium against the real API over HTTP: the key
// typed in, a session opened from the list, its history, lines appended through the API showing
// up, following paused and resumed, hostile lines inert, a reload and a server restart ridden
// out, a permalink, and 100,000 lines. The figures the issue sets goals for (first render, append
// → line on screen) are measured here and printed; the build's size is checked against its goal.

const dist = new URL('../dist/', import.meta.url)

describe('the built page', () => {
  it('ships at most 60 KB of JavaScript, gzipped, and no inline script', () => {
    const files = readdirSync(dist)
    const js = files.filter((f) => f.endsWith('.js'))
    expect(js.length).toBeGreaterThan(0)
    const gzipped = js.reduce((sum, f) => sum + gzipSync(readFileSync(new URL(f, dist))).length, 0)
    console.log(`page JavaScript: ${(gzipped / 1024).toFixed(1)} KB gzipped (goal: 60 KB)`)
    expect(gzipped).toBeLessThanOrEqual(60 * 1024)
    const html = readFileSync(new URL('index.html', dist), 'utf8')
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/)
    expect(html).not.toMatch(/\sstyle=|<style/)
  })
})

describe.skipIf(!chromiumPath)(
  `in a browser${chromiumPath ? '' : ` (skipped: no Chromium found; install it with \`${INSTALL_CHROMIUM}\`)`}`,
  () => {
    let api: Api
    let browser: Browser
    const contexts: BrowserContext[] = []

    beforeAll(async () => {
      api = await startApi()
      browser = await launchChromium()
    })
    afterAll(async () => {
      await browser?.close()
      await api?.close()
    })

    /** A fresh tab (its own sessionStorage) that fails the test on any dialog, logging what the page requests. */
    /** What the page's Content-Security-Policy refused, by tab: a page that works refuses nothing. */
    const refusals = new Map<Page, string[]>()

    async function newPage(): Promise<{ page: Page; requests: { url: string; authorization?: string }[] }> {
      const context = await browser.newContext({ viewport: { width: 1280, height: 720 } })
      contexts.push(context)
      const page = await context.newPage()
      const requests: { url: string; authorization?: string }[] = []
      page.on('request', (r) => requests.push({ url: r.url(), authorization: r.headers().authorization }))
      refusals.set(page, [])
      page.on('console', (message) => {
        if (/Content Security Policy|Trusted Type/i.test(message.text())) refusals.get(page)!.push(message.text())
      })
      page.on('dialog', (dialog) => {
        throw new Error(`a dialog opened: ${dialog.type()} ${dialog.message()}`)
      })
      return { page, requests }
    }

    /** A page with the key given, at `path`. */
    async function signedIn(path: string) {
      const opened = await newPage()
      await opened.page.goto(`${api.url}${path}`)
      await opened.page.getByLabel('Secret key').fill(api.key)
      await opened.page.getByRole('button', { name: 'Continue' }).click()
      return opened
    }

    const rowsWith = (page: Page, text: string) => page.locator('.log .row', { hasText: text })
    const connection = (page: Page) => page.locator('.connection')
    const rowsInDom = (page: Page) => page.locator('.log .row').count()

    afterAll(async () => {
      for (const context of contexts) await context.close().catch(() => {})
    })

    it('asks for the key in a password field, says a wrong one was refused, keeps a right one for the tab only', async () => {
      const { sessionId } = await newSession(api)
      const { page, requests } = await newPage()
      await page.goto(api.url)
      const field = page.getByLabel('Secret key')
      expect(await field.getAttribute('type')).toBe('password')
      await field.fill('metorial_sk_wrongwrongwrongwrong')
      await page.getByRole('button', { name: 'Continue' }).click()
      await expect.poll(() => page.locator('.refused').textContent()).toMatch(/refused: Invalid API key/)

      await page.getByLabel('Secret key').fill(api.key)
      await page.getByRole('button', { name: 'Continue' }).click()
      await page.locator(`tr[data-session="${sessionId}"]`).waitFor()
      expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([api.key])
      expect(await page.evaluate(() => localStorage.length)).toBe(0)
      expect(page.url()).not.toContain(api.key)
      // The key goes in the Authorization header of the API's requests, and nowhere else.
      const apiRequests = requests.filter((r) => r.url.includes('/sessions'))
      expect(apiRequests.length).toBeGreaterThan(0)
      expect(apiRequests.at(-1)!.authorization).toBe(`Bearer ${api.key}`)
      expect(requests.some((r) => r.url.includes(api.key))).toBe(false)
    })

    it('opens a session from the list: its lines, one a row, with time, server, run and stream; stderr and errors set apart; colours rendered', async () => {
      const { sessionId, runId, append } = await newSession(api, 'weather-server')
      await append(['Server listening on stdio', { type: 'stderr', line: 'warn: no token' }])
      await append(['\u001b[31mred\u001b[0m and \u001b[1;32mbold green\u001b[0m'])
      await api.client.serverRuns.stop(sessionId, runId, {
        status: 'failed',
        error: { code: 'process_exited', message: 'The server exited with code 1.' },
      })
      const { page } = await signedIn('/')
      await page.locator(`a[href="/?session=${sessionId}"]`).click()
      await page.waitForURL(`**/?session=${sessionId}`)
      const first = rowsWith(page, 'Server listening on stdio')
      await first.waitFor()
      expect(await first.locator('.time').textContent()).toMatch(/^\d\d:\d\d:\d\d\.\d{3}$/)
      expect(await first.locator('.server').textContent()).toBe('weather-server')
      expect(await first.locator('.run').textContent()).toBe(`…${runId.slice(-6)}`)
      expect(await first.locator('.stream').textContent()).toBe('stdout')
      expect(await rowsWith(page, 'warn: no token').getAttribute('class')).toMatch(/\bstderr\b/)
      const error = rowsWith(page, 'process_exited: The server exited with code 1.')
      expect(await error.getAttribute('class')).toMatch(/\berror\b/)
      const red = rowsWith(page, 'bold green').locator('.text span').first()
      expect(await red.textContent()).toBe('red')
      expect(await red.evaluate((e) => getComputedStyle(e).color)).toBe('rgb(187, 0, 0)')
      expect(await rowsWith(page, 'bold green').locator('.text').textContent()).toBe('red and bold green')
      // The run's status.
      expect(await page.locator(`.run-chip[data-run="${runId}"]`).textContent()).toMatch(/failed$/)
      // All of it within the page's Content-Security-Policy.
      expect(refusals.get(page)).toEqual([])
    })

    it('follows live: an appended line is on screen within a second; one stream for the open session', async () => {
      const { sessionId, append } = await newSession(api)
      await append(['history line'])
      const { page, requests } = await signedIn(`/?session=${sessionId}`)
      await rowsWith(page, 'history line').waitFor()
      await expect.poll(() => connection(page).getAttribute('data-state')).toBe('live')
      const delays: number[] = []
      for (let i = 0; i < 10; i++) {
        const marker = `live line ${i} ${Date.now()}`
        // When the row shows, by the page's clock (the same machine's as this one's).
        const seen = page.evaluate(
          (text) =>
            new Promise<number>((resolve) => {
              const found = () => [...document.querySelectorAll('.log .row')].some((r) => r.textContent?.includes(text))
              if (found()) return resolve(Date.now())
              const observer = new MutationObserver(() => {
                if (!found()) return
                observer.disconnect()
                resolve(Date.now())
              })
              observer.observe(document.querySelector('.log')!, { childList: true, subtree: true })
            }),
          marker,
        )
        await page.waitForTimeout(20)
        const { at } = await append([marker])
        delays.push((await seen) - at)
      }
      const sorted = [...delays].sort((a, b) => a - b)
      console.log(
        `append 201 → line on screen: median ${sorted[5]} ms, max ${sorted.at(-1)} ms over ${delays.length} appends (goal: 100 ms)`,
      )
      expect(sorted.at(-1)).toBeLessThan(1_000)
      // Filters and search change what is shown, not the stream: one connection for the session.
      await page.getByLabel('Stream', { exact: true }).selectOption('stderr')
      await page.getByLabel('Search').fill('live')
      await page.getByLabel('Stream', { exact: true }).selectOption('')
      await append(['after the filters'])
      await rowsWith(page, 'after the filters').waitFor()
      expect(requests.filter((r) => r.url.includes(`/sessions/${sessionId}/events/stream`))).toHaveLength(1)
    })

    it('pauses when scrolled up and counts what comes ("N new"); one click jumps back to the latest', async () => {
      const { sessionId, append } = await newSession(api)
      await append(Array.from({ length: 300 }, (_, i) => `old line ${i}`))
      const { page } = await signedIn(`/?session=${sessionId}`)
      await rowsWith(page, 'old line 299').waitFor()
      await expect.poll(() => connection(page).getAttribute('data-state')).toBe('live')
      await page.locator('.log').evaluate((log) => log.scrollBy(0, -2_000))
      await expect.poll(() => page.locator('footer').textContent()).toMatch(/paused/)
      for (let i = 0; i < 4; i++) await append([`new line ${i}`])
      await append([`new line 4`, `new line 5`])
      const button = page.locator('.new-lines')
      await expect.poll(() => button.textContent()).toBe('↓ 6 new')
      expect(await rowsWith(page, 'new line').count()).toBe(0)
      await button.click()
      await rowsWith(page, 'new line 5').waitFor()
      expect(await button.isHidden()).toBe(true)
      expect(await page.locator('footer').textContent()).toMatch(/following/)
      await append(['after the jump'])
      await rowsWith(page, 'after the jump').waitFor()
    })

    it('shows hostile lines as text and runs nothing', async () => {
      const { sessionId, append } = await newSession(api)
      const hostile = [
        '<img src=x onerror=alert(1)>',
        '\u001b]8;;javascript:alert(1)\u0007x',
        '<script>alert(2)</script>',
        '\u001b]8;;https://example.com\u0007link\u001b]8;;\u0007 text',
        '"><svg onload=alert(3)>',
        '\u001b[2J\u001b[Hcleared? \u001b]0;title\u0007no',
      ]
      await append(hostile)
      const { page } = await signedIn(`/?session=${sessionId}`)
      await rowsWith(page, 'cleared?').waitFor()
      const texts = await page.locator('.log .row .text').allTextContents()
      expect(texts).toEqual([
        '<img src=x onerror=alert(1)>',
        'x',
        '<script>alert(2)</script>',
        'link text',
        '"><svg onload=alert(3)>',
        'cleared? no',
      ])
      expect(await page.locator('.log img, .log script, .log svg, .log a, .log iframe').count()).toBe(0)
      // Opened in the detail panel too: still text.
      await rowsWith(page, '<img src=x').click()
      expect(await page.locator('.detail-text').textContent()).toBe('<img src=x onerror=alert(1)>')
      expect(await page.locator('.detail img').count()).toBe(0)
      await page.waitForTimeout(300) // an onerror would have fired by now
      expect(refusals.get(page)).toEqual([])
    })

    it('resumes after a reload, and rides out a server restart, saying so while it reconnects', async () => {
      const { sessionId, append } = await newSession(api)
      await append(['before the reload'])
      const { page } = await signedIn(`/?session=${sessionId}`)
      await rowsWith(page, 'before the reload').waitFor()
      await page.reload()
      // The key is still the tab's: no question asked.
      await rowsWith(page, 'before the reload').waitFor()
      await expect.poll(() => connection(page).getAttribute('data-state')).toBe('live')
      await append(['after the reload'])
      await rowsWith(page, 'after the reload').waitFor()

      // Every state the page shows from here on, with its text, as the page shows it: the
      // reconnecting state may last less than a poll's interval (a quick restart on a busy machine).
      await connection(page).evaluate((el) => {
        const seen: string[] = []
        ;(window as unknown as { seenStates: string[] }).seenStates = seen
        const note = () => {
          const state = `${el.getAttribute('data-state')} ${el.textContent}`
          if (seen.at(-1) !== state) seen.push(state)
        }
        new MutationObserver(note).observe(el, {
          attributes: true,
          childList: true,
          subtree: true,
          characterData: true,
        })
      })
      await api.restart()
      await expect
        .poll(() => page.evaluate(() => (window as unknown as { seenStates: string[] }).seenStates), {
          timeout: 10_000,
        })
        .toContainEqual(expect.stringMatching(/^reconnecting Reconnecting…/))
      await append(['while it was away'])
      await expect.poll(() => connection(page).getAttribute('data-state'), { timeout: 10_000 }).toBe('live')
      await append(['after the restart'])
      await rowsWith(page, 'after the restart').waitFor()
      // Nothing missed, nothing twice.
      for (const line of ['before the reload', 'after the reload', 'while it was away', 'after the restart'])
        expect(await rowsWith(page, line).count(), line).toBe(1)
    })

    it('opens a permalink scrolled to its event, and links each line', async () => {
      const { sessionId, append } = await newSession(api)
      const ids: string[] = []
      for (let i = 0; i < 40; i++)
        ids.push((await append(Array.from({ length: 10 }, (_, j) => `event ${i} line ${j}`))).id)
      const target = ids[12]!
      const { page } = await signedIn(`/?session=${sessionId}&event=${target}`)
      const row = page.locator(`.log .row.target[data-event="${target}"]`).first()
      await row.waitFor()
      expect(await row.textContent()).toContain('event 12 line 0')
      expect(await row.isVisible()).toBe(true)
      const box = (await row.boundingBox())!
      const log = (await page.locator('.log').boundingBox())!
      expect(box.y).toBeGreaterThanOrEqual(log.y)
      expect(box.y + box.height).toBeLessThanOrEqual(log.y + log.height)
      // Every event after it came too (the stream from it); the page stays on it.
      await expect.poll(() => page.locator('footer').textContent()).toMatch(/400 lines/)
      // A line's link is the permalink of its event.
      const link = page.locator('.detail .permalink')
      expect(await link.getAttribute('href')).toBe(`/?session=${sessionId}&event=${target}`)
      await rowsWith(page, 'event 13 line 4').click()
      expect(await link.getAttribute('href')).toBe(`/?session=${sessionId}&event=${ids[13]}`)
    })

    it('filters by run, stream and type, and highlights what the search finds', async () => {
      const one = await newSession(api, 'alpha')
      await one.append(['alpha says hello', { type: 'stderr', line: 'alpha warns' }])
      const run2 = await api.client.serverRuns.start(one.sessionId, { type: 'external', server: { name: 'beta' } })
      await api.client.events.append(one.sessionId, {
        server_run_id: run2.id,
        log_lines: [{ type: 'stdout', line: 'beta says hello' }],
      })
      await api.client.serverRuns.stop(one.sessionId, run2.id, {
        status: 'failed',
        error: { code: 'crashed', message: 'beta fell over' },
      })
      const { page } = await signedIn(`/?session=${one.sessionId}`)
      await rowsWith(page, 'beta fell over').waitFor()
      const texts = () => page.locator('.log .row .text').allTextContents()
      await page.getByLabel('Run', { exact: true }).selectOption(run2.id)
      await expect.poll(texts).toEqual(['beta says hello', 'crashed: beta fell over'])
      await page.getByLabel('Run', { exact: true }).selectOption('')
      await page.getByLabel('Stream', { exact: true }).selectOption('stderr')
      await expect.poll(texts).toEqual(['alpha warns', 'crashed: beta fell over'])
      await page.getByLabel('Stream', { exact: true }).selectOption('')
      await page.getByLabel('Type', { exact: true }).selectOption('server_run_error')
      await expect.poll(texts).toEqual(['crashed: beta fell over'])
      await page.getByLabel('Type', { exact: true }).selectOption('')
      await page.getByLabel('Search').fill('HELLO')
      await expect.poll(() => page.locator('.search-count').textContent()).toBe('2 matches')
      expect(await page.locator('.log .row mark').allTextContents()).toEqual(['hello', 'hello'])
      await page.getByLabel('Search').press('Enter')
      expect(await page.locator('.search-count').textContent()).toBe('1 of 2')
    })

    it('renders 1,000 lines at once and stays bounded and smooth at 100,000 lines', async () => {
      // 1,000 lines: 100 appends of 10, the newest page of history.
      const small = await newSession(api)
      for (let i = 0; i < 100; i++)
        await small.append(Array.from({ length: 10 }, (_, j) => `small ${i * 10 + j} \u001b[36mcyan\u001b[0m`))
      const { page } = await signedIn(`/?session=${small.sessionId}`)
      await rowsWith(page, 'small 999').waitFor()
      await expect.poll(() => page.locator('footer').textContent()).toMatch(/^1,000 lines/)
      // Reloaded, with the key kept: the navigation, the page's script, the history and its rows.
      await page.reload()
      await rowsWith(page, 'small 999').waitFor()
      const firstRender = await page.evaluate(
        () => performance.getEntriesByName('session-events:first-rows')[0]!.startTime,
      )
      console.log(
        `first render of a session of 1,000 lines: ${firstRender.toFixed(0)} ms from navigation (goal: 300 ms)`,
      )

      // 100,000 lines: 100 appends of 1,000.
      const big = await newSession(api)
      for (let i = 0; i < 100; i++)
        await big.append(Array.from({ length: 1_000 }, (_, j) => `big line ${i * 1_000 + j} of the session`))
      await page.goto(`${api.url}/?session=${big.sessionId}`)
      await rowsWith(page, 'big line 99999 of').waitFor()
      await expect.poll(() => page.locator('footer').textContent()).toMatch(/^100,000 lines/)
      const bigRender = await page.evaluate(
        () => performance.getEntriesByName('session-events:first-rows')[0]!.startTime,
      )
      console.log(`first render of a session of 100,000 lines: ${bigRender.toFixed(0)} ms from navigation`)
      expect(await rowsInDom(page)).toBeLessThanOrEqual(200)
      // Scrolled from the end to the start in steps of a screen, one frame each: the frames' times.
      const frames = await page.locator('.log').evaluate(async (log) => {
        const times: number[] = []
        let last = performance.now()
        const steps = 120
        for (let i = 1; i <= steps; i++) {
          log.scrollTop = log.scrollHeight * (1 - i / steps)
          await new Promise(requestAnimationFrame)
          const now = performance.now()
          times.push(now - last)
          last = now
        }
        return times.sort((a, b) => a - b)
      })
      const p95 = frames[Math.floor(frames.length * 0.95)]!
      console.log(
        `100,000 lines, scrolled end to start a screen at a time: median frame ${frames[frames.length >> 1]!.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms`,
      )
      expect(await rowsInDom(page)).toBeLessThanOrEqual(200)
      await rowsWith(page, 'big line 0 of').waitFor()
      expect(await page.locator('footer').textContent()).toMatch(/from the start of the session/)
    })
  },
)
