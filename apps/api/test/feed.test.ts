import pg from 'pg'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { LocalFeed, NOTIFY_CHANNEL, NOTIFY_EVERY_MS, PostgresFeed } from '../src/store/feed.js'
import { backend, networkPostgres, onPostgres } from './backend.js'

// PostgreSQL's wake-ups between processes (store/feed.ts): a process NOTIFYs the sessions it
// wrote to after their commits, at most once every NOTIFY_EVERY_MS; the first write after a quiet
// spell is told at once, not at the end of a window, and those within the window together.

const closing: (() => Promise<unknown>)[] = []
afterAll(async () => {
  for (const close of closing.reverse()) await close()
})

describe('this process’s own writes', () => {
  it('wake their followers once the turn is over, once a session for the writes of a turn', async () => {
    const feed = new LocalFeed()
    const woken: string[] = []
    feed.subscribe('ses_a', () => woken.push('a'))
    feed.subscribe('ses_b', () => woken.push('b'))
    feed.published(['ses_a'])
    feed.published(['ses_a', 'ses_b'])
    // Not during the turn: the answers of its writes (an append's 201) go out before the followers' bytes.
    expect(woken).toEqual([])
    await new Promise((r) => setImmediate(r))
    expect(woken.sort()).toEqual(['a', 'b'])
    // The next turn's writes wake them again.
    feed.published(['ses_b'])
    await new Promise((r) => setImmediate(r))
    expect(woken.sort()).toEqual(['a', 'b', 'b'])
  })
})

describe.runIf(onPostgres)(`NOTIFY after commit (${backend})`, () => {
  it('tells the first write after a quiet spell at once, and the writes within its window together', async () => {
    const where = (await networkPostgres())!
    // Sessions of this test alone: the channel is the database's, and other tests share it.
    const mine = `ses_feedtest${Date.now().toString(36)}`
    const listener = new pg.Client({ connectionString: where.url })
    await listener.connect()
    closing.push(() => listener.end())
    const heard: string[][] = []
    listener.on('notification', (message) => {
      const ids = (message.payload ?? '').split(' ').slice(1)
      if (message.channel === NOTIFY_CHANNEL && ids.some((id) => id.startsWith(mine))) heard.push(ids)
    })
    await listener.query(`LISTEN ${NOTIFY_CHANNEL}`)

    const feed = new PostgresFeed({ connectionString: where.url })
    closing.push(() => feed.close())
    // Its connection opens with the first write; told once it is open.
    feed.published([`${mine}_probe`])
    await vi.waitFor(() => expect(heard).toEqual([[`${mine}_probe`]]), { timeout: 10_000, interval: 20 })
    // A quiet spell, longer than the window.
    await new Promise((r) => setTimeout(r, NOTIFY_EVERY_MS * 4))

    heard.length = 0
    feed.published([`${mine}_a`])
    feed.published([`${mine}_b`])
    feed.published([`${mine}_c`, `${mine}_a`])
    await vi.waitFor(() => expect(heard.length).toBe(2), { timeout: 10_000, interval: 20 })
    expect(heard[0]).toEqual([`${mine}_a`])
    expect(heard[1]!.sort()).toEqual([`${mine}_a`, `${mine}_b`, `${mine}_c`])
  })
})
