// The log lines of a run, in the order they arrived, appended in batches by one sender.
//
// Lines of both streams go into one queue. One sender takes a batch from its head and appends
// it; the next batch is taken only when that append has answered, so two appends are never in
// flight and the events' ids follow the order of the lines. A batch is sent once it is full
// (the most lines an append takes, or a body near the API's 5 MB limit) or once its oldest line
// has waited 100 ms, whichever comes first. A batch that fails with a retryable error is sent
// again, the same lines with the same Idempotency-Key (outage.ts), while new lines wait in the
// queue behind it.
import { randomUUID } from 'node:crypto'
import { type LogLine, specValues } from '@session-events/client'
import { MAX_LINE_LENGTH } from './lines.js'
import { type OutageOptions, retryThroughOutage } from './outage.js'

/** The most lines one append takes. */
export const MAX_LINES_PER_APPEND = specValues.schemas.SessionEventCreate.properties.log_lines.maxItems

export interface BatcherOptions extends OutageOptions {
  /**
   * Appends one batch; called again with the same lines and key after a retryable failure.
   * The signal aborts at the outage deadline.
   */
  send: (lines: LogLine[], idempotencyKey: string, signal: AbortSignal) => Promise<void>
  /** Called once, with the error, when a batch cannot be sent: nothing is sent after it. */
  onFailure?: (error: unknown) => void
  /** Lines a batch. Default: the most an append takes (the spec's `log_lines` `maxItems`). */
  maxLines?: number
  /** Bytes of the lines of a batch, JSON-encoded. Default 4 MiB, under the API's 5 MB body. */
  maxBytes?: number
  /** How long the oldest line of a batch may wait for more. Default 100 ms. */
  maxDelayMs?: number
  /** Queued bytes over which push() answers false, to pause the sources. Default 64 MiB. */
  highWaterMark?: number
}

interface Queued {
  line: LogLine
  bytes: number
  at: number
}

export class LogLineBatcher {
  readonly #options: BatcherOptions
  readonly #maxLines: number
  readonly #maxBytes: number
  readonly #maxDelayMs: number
  readonly #highWaterMark: number
  /** The lines not taken into a batch yet; `#head` is the first. */
  #queue: Queued[] = []
  #head = 0
  #queuedBytes = 0
  /** The sender: it runs while lines are queued, then ends until the next push(). */
  #sender: Promise<void> = Promise.resolve()
  #sending = false
  /** Wakes the sender from its wait for more lines. */
  #wake: (() => void) | undefined
  #closing = false
  #failed = false
  #failure: unknown
  #drainWaiters: (() => void)[] = []
  #sentLines = 0
  #sentBatches = 0

  constructor(options: BatcherOptions) {
    this.#options = options
    this.#maxLines = options.maxLines ?? MAX_LINES_PER_APPEND
    this.#maxBytes = options.maxBytes ?? 4 * 1024 * 1024
    this.#maxDelayMs = options.maxDelayMs ?? 100
    this.#highWaterMark = options.highWaterMark ?? 64 * 1024 * 1024
  }

  /** Lines and batches appended so far. */
  get sent(): { lines: number; batches: number } {
    return { lines: this.#sentLines, batches: this.#sentBatches }
  }

  /**
   * Queues a line; lines longer than the API takes must have been cut (lines.ts). Answers false
   * when the queue is over its high-water mark: pause the source until drained() resolves.
   * Lines pushed after a failure are dropped: the caller is told through onFailure.
   */
  push(line: LogLine): boolean {
    if (this.#closing) throw new Error('LogLineBatcher: push() after close()')
    if (line.line.length > MAX_LINE_LENGTH)
      throw new RangeError(`LogLineBatcher: a line of ${line.line.length} characters`)
    if (this.#failed) return true
    const bytes = encodedBytes(line)
    this.#queue.push({ line, bytes, at: Date.now() })
    this.#queuedBytes += bytes
    if (!this.#sending) {
      this.#sending = true
      this.#sender = this.#run()
    } else if (this.#batchIsFull()) this.#wake?.()
    return this.#queuedBytes <= this.#highWaterMark
  }

  /** Resolves once the queue is under its high-water mark (or the batcher has failed). */
  drained(): Promise<void> {
    if (this.#failed || this.#queuedBytes <= this.#highWaterMark) return Promise.resolve()
    return new Promise((resolve) => this.#drainWaiters.push(resolve))
  }

  /** Sends every queued line without waiting for more; rejects with the failure, if any. */
  async close(): Promise<void> {
    this.#closing = true
    this.#wake?.()
    await this.#sender
    if (this.#failed) throw this.#failure
  }

  async #run(): Promise<void> {
    try {
      while (this.#head < this.#queue.length) {
        const wait = this.#queue[this.#head]!.at + this.#maxDelayMs - Date.now()
        if (wait > 0 && !this.#closing && !this.#batchIsFull()) await this.#sleep(wait)
        await this.#send(this.#take())
      }
    } catch (error) {
      this.#fail(error)
    } finally {
      this.#sending = false
    }
  }

  async #send(lines: LogLine[]): Promise<void> {
    const key = randomUUID() // one per batch, sent again with every retry of it
    await retryThroughOutage((signal) => this.#options.send(lines, key, signal), this.#options)
    this.#sentLines += lines.length
    this.#sentBatches++
  }

  /** Takes the next batch from the head of the queue. */
  #take(): LogLine[] {
    const lines: LogLine[] = []
    let bytes = 0
    while (this.#head < this.#queue.length && lines.length < this.#maxLines) {
      const next = this.#queue[this.#head]!
      if (lines.length > 0 && bytes + next.bytes > this.#maxBytes) break
      lines.push(next.line)
      bytes += next.bytes
      this.#head++
    }
    this.#queuedBytes -= bytes
    // Drop the taken entries now and then, not on every batch: slicing is O(queue).
    if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
    if (this.#queuedBytes <= this.#highWaterMark) this.#releaseDrainWaiters()
    return lines
  }

  #batchIsFull(): boolean {
    const count = this.#queue.length - this.#head
    if (count >= this.#maxLines) return true
    return this.#queuedBytes >= this.#maxBytes
  }

  /** Waits `ms`, or less if push() finds the batch full or close() is called. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#wake?.(), ms)
      this.#wake = () => {
        clearTimeout(timer)
        this.#wake = undefined
        resolve()
      }
    })
  }

  #fail(error: unknown): void {
    this.#failed = true
    this.#failure = error
    this.#queue = []
    this.#head = 0
    this.#queuedBytes = 0
    this.#releaseDrainWaiters()
    this.#options.onFailure?.(error)
  }

  #releaseDrainWaiters(): void {
    const waiters = this.#drainWaiters
    this.#drainWaiters = []
    for (const resolve of waiters) resolve()
  }
}

/** The bytes a line adds to a request body: `{"type":"stdout","line":"…"},`. */
function encodedBytes(line: LogLine): number {
  return Buffer.byteLength(JSON.stringify(line.line)) + 26
}
