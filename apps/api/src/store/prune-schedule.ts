import type { Logger } from 'pino'
import { Lease, LeaseLostError } from './prune-lease.js'
import type { PrunableStore } from './prune-store.js'
import { prune, type PruneResult } from './prune.js'

// The server prunes on its own (main.ts starts this; it stops on shutdown). Every process looks
// once a minute; the one that takes the lease (prune-lease.ts) prunes, if the last prune, by any
// process, ended PRUNE_EVERY_MS ago or more. So N processes prune once every five minutes or so
// between them, one at a time; when the one pruning dies, its lease runs out and another takes
// over at its next look.

/** How often the deployment prunes, whatever the number of processes. */
export const PRUNE_EVERY_MS = 5 * 60_000
/** How often each process looks whether it is time. */
const LOOK_EVERY_MS = 60_000
/** The first look after start: soon, but not in the way of the start itself. */
const FIRST_LOOK_MS = 5_000

class Stopping extends Error {
  override name = 'Stopping'
}

export interface PruneScheduleOptions {
  store: PrunableStore
  /** EVENT_RETENTION (config.ts), in ms; Infinity: off. */
  defaultRetentionMs: number
  logger?: Pick<Logger, 'info' | 'warn' | 'debug'>
  /** The clock (the tests'). */
  now?: () => Date
  /** Who this process is, in the lease. */
  holder?: string
  everyMs?: number
  lookEveryMs?: number
  firstLookMs?: number
}

export interface PruneSchedule {
  /** Looks now, as the timer does: what this process pruned, or undefined when it was not its turn. */
  look(): Promise<PruneResult | undefined>
  /** No more looks; a prune under way stops at its next step, and the lease is given back. */
  stop(): Promise<void>
}

export function schedulePruning(options: PruneScheduleOptions): PruneSchedule {
  const now = options.now ?? (() => new Date())
  const lease = new Lease(options.store.db, { now, ...(options.holder !== undefined && { holder: options.holder }) })
  const everyMs = options.everyMs ?? PRUNE_EVERY_MS
  let stopped = false
  let running: Promise<PruneResult | undefined> | undefined

  async function pruneIfDue(): Promise<PruneResult | undefined> {
    if (!(await lease.take({ unlessRanWithinMs: everyMs }))) return undefined
    let ran = false
    try {
      const started = performance.now()
      const result = await prune(options.store, {
        defaultRetentionMs: options.defaultRetentionMs,
        now: now(),
        step: async () => {
          if (stopped) throw new Stopping()
          await lease.renew()
        },
      })
      ran = true
      const ms = Math.round(performance.now() - started)
      const removed = result.events_deleted + result.sessions_deleted + result.idempotency_keys_deleted
      options.logger?.[removed > 0 ? 'info' : 'debug']({ ...result, ms }, 'pruned')
      return result
    } finally {
      await lease.give({ ran }).catch(() => {})
    }
  }

  async function look(): Promise<PruneResult | undefined> {
    if (stopped || running) return undefined
    running = pruneIfDue()
    try {
      return await running
    } catch (error) {
      // The store is down, or another process took over: the next look tries again.
      if (!(error instanceof Stopping) && !(error instanceof LeaseLostError))
        options.logger?.warn({ err: error }, 'prune failed; the next look tries again')
      return undefined
    } finally {
      running = undefined
    }
  }

  const first = setTimeout(() => void look(), options.firstLookMs ?? FIRST_LOOK_MS)
  const timer = setInterval(() => void look(), options.lookEveryMs ?? LOOK_EVERY_MS)
  first.unref()
  timer.unref()

  return {
    look,
    async stop() {
      stopped = true
      clearTimeout(first)
      clearInterval(timer)
      await running?.catch(() => {})
    },
  }
}
