// The order in which `session-events run` records lines: every line once; each stream's lines in
// the order printed; the two streams interleaved as they were read, which is the order printed
// only where the command waits until its earlier lines are read (two pipes carry no order
// between them); one exact order across both with --merge-stderr.
import { join } from 'node:path'
import { type LogLine } from '@session-events/client'
import { describe, expect, it } from 'vitest'
import { cli, client, err, eventsOf, idsOf, linesOf, out, script, scripts, useRunWorld } from './run-world.js'

useRunWorld()

/**
 * For a child script: `await storedLines(n)` waits until the session named by RUN_SESSION holds
 * n log lines, read through the API, so that what the child printed before has been read by run.
 */
const STORED_LINES = `
async function storedLines(n) {
  const deadline = Date.now() + 20_000
  for (;;) {
    let count = 0
    let after
    for (;;) {
      const url = new URL(\`\${process.env.SESSION_EVENTS_BASE_URL}/sessions/\${process.env.RUN_SESSION}/events\`)
      url.searchParams.set('limit', '100')
      if (after) url.searchParams.set('after', after)
      const res = await fetch(url, { headers: { authorization: \`Bearer \${process.env.SESSION_EVENTS_API_KEY}\` } })
      // A server under load sheds with 503 (and Retry-After): asked again, as the client would.
      if (res.status === 503 || res.status === 429) {
        await sleep(Number(res.headers.get('retry-after') ?? 1) * 1000)
        continue
      }
      if (!res.ok) throw new Error(\`\${res.status} \${await res.text()}\`)
      const page = await res.json()
      for (const event of page.items) count += event.log_lines.length
      if (!page.pagination.has_more_after) break
      after = page.items.at(-1).id
    }
    if (count >= n) return
    if (Date.now() > deadline) throw new Error(\`\${count} of \${n} lines stored after 20 s\`)
    await sleep(10)
  }
}
`

describe('session-events run: the order of the lines', () => {
  it('records every line once, in the order printed where the command waits for it to be read, and exits with the command’s code', async () => {
    // Two pipes carry no order between them: the child waits until its earlier lines are stored
    // (so read) before it prints on the other stream, which makes the order across them observable.
    const session = await client.sessions.create()
    const long = `${'a'.repeat(65_536)}${'b'.repeat(65_536)}${'c'.repeat(100)}`
    const child = script(
      'interleaved',
      `${STORED_LINES}
      let printed = 0
      for (let i = 0; i < 12; i++) {
        const fd = i % 3 === 1 ? 2 : 1
        await storedLines(printed)
        print(fd, \`\${fd === 2 ? 'err' : 'out'} \${i}\\n\`)
        printed += 1
      }
      await storedLines(printed)
      print(2, ${JSON.stringify(`${long}\n`)})
      printed += 3 // cut into three lines
      await storedLines(printed)
      for (let i = 0; i < 2500; i++) print(1, \`burst \${i}\\n\`)
      printed += 2500
      await storedLines(printed)
      print(2, 'café ☕ \\r\\n')
      printed += 1
      await storedLines(printed)
      print(1, 'the last line, without a line break')
      process.exitCode = 3
      `,
    )
    const run = await cli(['run', '--session', session.id, '--', process.execPath, child], { RUN_SESSION: session.id })

    expect(run.code, run.stderr).toBe(3)
    const { sessionId, serverRunId } = idsOf(run.stderr)
    expect(run.stderr).toContain(`follow it: session-events events tail ${sessionId}`)
    // The command's output is copied to ours.
    expect(run.stdout).toContain('out 0\nout 2\n')
    expect(run.stdout).toContain('burst 2499\n')
    expect(run.stderr).toContain('err 1\n')

    const events = await eventsOf(sessionId, serverRunId)
    const expected: LogLine[] = [
      ...Array.from({ length: 12 }, (_, i) => (i % 3 === 1 ? err(`err ${i}`) : out(`out ${i}`))),
      err('a'.repeat(65_536)),
      err('b'.repeat(65_536)),
      err('c'.repeat(100)),
      ...Array.from({ length: 2500 }, (_, i) => out(`burst ${i}`)),
      err('café ☕ '),
      out('the last line, without a line break'),
    ]
    expect(linesOf(events)).toEqual(expected)

    const logs = events.filter((e) => e.type === 'server_logs')
    expect(logs.map((e) => e.id)).toEqual(events.slice(0, -1).map((e) => e.id))
    expect(Math.max(...logs.map((e) => e.log_lines.length))).toBeLessThanOrEqual(1_000)
    expect(logs.length).toBeGreaterThanOrEqual(3 + 2)

    const error = events.at(-1)!
    expect(error.type).toBe('server_run_error')
    expect(error.server_run_error).toMatchObject({
      code: 'process_exited',
      metadata: { exit_code: 3 },
    })
    const serverRun = await client.serverRuns.get(sessionId, serverRunId)
    expect(serverRun).toMatchObject({
      status: 'failed',
      type: 'external',
      server: { name: 'node' },
    })
    expect(serverRun.stopped_at).not.toBeNull()
    expect(run.stderr).toContain(
      `server run ${serverRunId} failed (The process exited with code 3.): ${expected.length} lines in ${logs.length} events`,
    )
  })

  it('keeps each stream’s lines in the order printed, every line once, when the command does not wait', async () => {
    const child = script('racing', `for (let i = 0; i < 3000; i++) print(i % 3 === 0 ? 2 : 1, \`line \${i}\\n\`)`)
    const run = await cli(['run', '--quiet', '--', process.execPath, child])
    expect(run.code, run.stderr).toBe(0)
    const { sessionId, serverRunId } = idsOf(run.stderr)
    const lines = linesOf(await eventsOf(sessionId, serverRunId))
    const printed = Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? err(`line ${i}`) : out(`line ${i}`)))
    expect(lines).toHaveLength(printed.length)
    // Each stream in its own order; across the two, whatever order they were read in.
    expect(lines.filter((l) => l.type === 'stdout')).toEqual(printed.filter((l) => l.type === 'stdout'))
    expect(lines.filter((l) => l.type === 'stderr')).toEqual(printed.filter((l) => l.type === 'stderr'))
  })

  it('keeps one exact order across both streams with --merge-stderr, every line as stdout', async () => {
    const child = script(
      'merged',
      `
      for (let i = 0; i < 3000; i++) print(i % 3 === 0 ? 2 : 1, \`line \${i}\\n\`)
      for (let i = 0; i < 2500; i++) print(1, \`burst \${i}\\n\`)
      print(2, 'café ☕ \\r\\n')
      process.exitCode = 4
      `,
    )
    const run = await cli(['run', '--merge-stderr', '--', process.execPath, child])
    expect(run.code, run.stderr).toBe(4)
    // The merged output is copied to our stdout.
    expect(run.stdout).toContain('line 0\nline 1\n')
    const { sessionId, serverRunId } = idsOf(run.stderr)
    const events = await eventsOf(sessionId, serverRunId)
    expect(linesOf(events)).toEqual([
      ...Array.from({ length: 3000 }, (_, i) => out(`line ${i}`)),
      ...Array.from({ length: 2500 }, (_, i) => out(`burst ${i}`)),
      out('café ☕ '),
    ])
    // The process is the command's own (the shell exec'd it): its exit code, not the shell's.
    expect(events.at(-1)!.server_run_error).toMatchObject({ code: 'process_exited', metadata: { exit_code: 4 } })

    const missing = await cli(['run', '--quiet', '--merge-stderr', '--', join(scripts, 'no-such-command')])
    expect(missing.code, missing.stderr).toBe(127)
    const ids = idsOf(missing.stderr)
    const failed = await eventsOf(ids.sessionId, ids.serverRunId)
    expect(failed.map((e) => e.server_run_error?.code)).toEqual(['process_not_started'])
  })
})
