import { afterAll, describe, expect, it } from 'vitest'
import type { SqlStore } from '../src/store/sql-store.js'
import { backend, openTestStore } from './backend.js'

// The cap on streams per key across processes (store/stream-slots.ts): each PostgresStreamSlots
// holds its slots on a connection of its own, as each API process does, so two of them over one
// database are two processes sharing one cap.

describe.runIf(backend === 'postgres')('PostgreSQL: one cap on streams per key, shared by the processes', () => {
  let store: SqlStore
  afterAll(() => store?.close())

  it('a process finds the slots the others left, past the first batch it tries; the cap holds in all', async () => {
    store = await openTestStore()
    const [a, b] = [store.streamSlots!(100), store.streamSlots!(100)]
    const takes = async (slots: typeof a, key: string, n: number) => {
      const taken: boolean[] = []
      for (let i = 0; i < n; i++) taken.push(await slots.take(key))
      return taken
    }
    // The first process holds the first 70 slots: more than one batch of the second's tries.
    expect(await takes(a, 'key-1', 70)).toEqual(Array(70).fill(true))
    expect(await takes(b, 'key-1', 30)).toEqual(Array(30).fill(true))
    // 100 in all: both are refused now, and another key is not.
    expect(await b.take('key-1')).toBe(false)
    expect(await a.take('key-1')).toBe(false)
    expect(await b.take('key-2')).toBe(true)
    // A stream that ends lets another in, in either process. (A slot is let go of in the
    // background, before the process's next lock: a take of another key waits for it.)
    a.give('key-1')
    await a.take('key-3')
    expect(await b.take('key-1')).toBe(true)
    expect(await a.take('key-1')).toBe(false)
    b.give('key-1')
    b.give('key-1')
    await b.take('key-3')
    expect(await takes(a, 'key-1', 3)).toEqual([true, true, false])
  })
})
