import { describe, expect, it, vi } from 'vitest'
import { LiveSessions, type LiveFollower, type LivePage } from '../src/live-sessions.js'
import { LocalFeed } from '../src/store/feed.js'

// The shared read's one rule, without a store: a follower joins it only where it stands or ahead.

/** A session's events as the shared read reads them: ids after `after`, in order. */
function session() {
  const ids: string[] = []
  const read = async (after: string): Promise<LivePage> => {
    const page = ids.filter((id) => id > after)
    return { ids: page, bytes: page.map((id) => new TextEncoder().encode(id)) }
  }
  return { ids, read }
}

function follower(last: string): LiveFollower & { got: string[] } {
  const got: string[] = []
  return {
    got,
    get last() {
      return got.at(-1) ?? last
    },
    deliver(page) {
      const from = got.at(-1) ?? last
      got.push(...page.ids.filter((id) => id > from))
      return true
    },
    fail() {},
  }
}

describe('LiveSessions', () => {
  it('a follower behind the shared read is not let in (it would never get what lies between); one at or ahead of it is', async () => {
    const feed = new LocalFeed()
    const live = new LiveSessions(feed)
    const { ids, read } = session()
    ids.push('a1')
    const first = follower('a1')
    const leaveFirst = live.join('s', 'k', first, read)
    expect(leaveFirst).toBeDefined()
    // b1 is committed and read by the shared read; a follower whose own read looked before b1 was committed stands at a1.
    ids.push('b1')
    feed.published(['s'])
    await vi.waitFor(() => expect(first.got).toEqual(['b1']))
    const behind = follower('a1')
    expect(live.join('s', 'k', behind, read)).toBeUndefined()
    // Once it has read b1 on its own, it joins, and gets what comes next once.
    behind.got.push('b1')
    const leaveBehind = live.join('s', 'k', behind, read)
    expect(leaveBehind).toBeDefined()
    ids.push('c1')
    feed.published(['s'])
    await vi.waitFor(() => expect(behind.got).toEqual(['b1', 'c1']))
    expect(first.got).toEqual(['b1', 'c1'])
    leaveFirst!()
    leaveBehind!()
    expect(live.reads).toBe(0)
  })
})
