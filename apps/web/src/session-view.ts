import { SessionEventsError, specValues, type SessionEvent, type SessionEventsClient } from '@session-events/client'
import { LogView } from './log-view.js'
import { matches, passes, rowsOf, Runs, type Filters, type Row } from './rows.js'
import { layoutSessionView, type SessionViewParts } from './session-view-layout.js'
import {
  renderConnection,
  renderDetail,
  renderInfo,
  renderRow,
  renderRuns,
  renderSearchCount,
  type Connection,
} from './session-view-render.js'

// One session, live: its history, newest page first and older pages as the view nears the top,
// then every event written after the newest one loaded, from the one stream the page opens
// (client.events.tail, from `after` that event: nothing missed, nothing twice). While the end of
// the list is in view the page follows it; scrolled up, it holds still and counts what comes.

/** The height of a row, in pixels: the CSS's `--row-height`. */
const ROW_HEIGHT = 20
/** A page of history: as many events as the spec lets a page hold. */
const PAGE = specValues.parameters.Limit.schema.maximum
/** How often the page asks after runs that are still active (a run's stop writes no event unless it failed). */
const RUN_POLL_MS = 5_000

export interface SessionViewOptions {
  client: SessionEventsClient
  sessionId: string
  /** The event to open the view at (a permalink); undefined: the newest. */
  eventId?: string | undefined
  /** Where the view goes. */
  root: HTMLElement
  /** The key was refused (401, 403): the page asks for another. */
  onKeyRefused: (error: SessionEventsError) => void
}

export class SessionView {
  readonly #options: SessionViewOptions
  readonly #client: SessionEventsClient
  readonly #stop = new AbortController()
  readonly #runs = new Runs()
  /** Every row loaded, oldest first. */
  #rows: Row[] = []
  /** The rows the filters let through, oldest first: what the list shows. */
  #shown: Row[] = []
  #filters: Filters = {}
  /** The search, lower case; '' for none. */
  #query = ''
  /** Indexes into #shown of the rows that match the search. */
  #matches: number[] = []
  /** Which match was jumped to last. */
  #matchAt = -1
  #following = true
  /** Rows shown since following paused. */
  #unseen = 0
  #hasOlder = false
  #loadingOlder = false
  #selected: Row | undefined
  #target: string | undefined
  #connection: Connection = 'connecting'
  #pendingRender = false
  #pollTimer: ReturnType<typeof setInterval> | undefined

  readonly #view: LogView<Row>
  readonly #ui: SessionViewParts

  constructor(options: SessionViewOptions) {
    this.#options = options
    this.#client = options.client
    this.#target = options.eventId
    this.#view = new LogView<Row>({
      rowHeight: ROW_HEIGHT,
      render: (row, element) => this.#renderRow(row, element),
      onScroll: (atEnd, nearStart) => this.#scrolled(atEnd, nearStart),
    })
    this.#ui = this.#layout()
  }

  /** Loads the history and starts following; resolves when the first rows are on screen. */
  async open(): Promise<void> {
    try {
      const after = this.#target ? await this.#openAtEvent(this.#target) : await this.#openAtEnd()
      this.#render()
      performance.mark('session-events:first-rows')
      void this.#follow(after)
      this.#pollTimer = setInterval(() => void this.#pollRuns(), RUN_POLL_MS)
    } catch (error) {
      this.#failed(error)
    }
  }

  close(): void {
    this.#stop.abort()
    clearInterval(this.#pollTimer)
    this.#view.destroy()
  }

  /** How many rows the DOM holds now (the test reads it too). */
  get rowsInDom(): number {
    return this.#view.rowsInDom
  }

  // ---- loading ----

  /** The newest page, newest first from the API, shown oldest first at the end of the list. */
  async #openAtEnd(): Promise<{ after?: string; tail?: number }> {
    const page = await this.#client.events.list(this.#options.sessionId, { order: 'desc', limit: PAGE })
    this.#hasOlder = page.pagination.has_more_after
    this.#add([...page.items].reverse(), 'end')
    const newest = page.items[0]
    // Nothing yet: the stream's last events (all of them that came since the empty page, unless
    // more than `tail` allows came in the instant between), then what comes.
    return newest ? { after: newest.id } : { tail: specValues.parameters.Tail.schema.maximum }
  }

  /** The event of a permalink, with the page before it; the stream brings everything after it. */
  async #openAtEvent(eventId: string): Promise<{ after?: string }> {
    let event: SessionEvent
    try {
      event = await this.#client.events.get(this.#options.sessionId, eventId)
    } catch (error) {
      if (!(error instanceof SessionEventsError) || error.status !== 404 || error.entity !== 'session_event')
        throw error
      this.#say(`No event ${eventId} in this session: showing its newest events.`)
      this.#target = undefined
      return this.#openAtEnd()
    }
    const older = await this.#client.events.list(this.#options.sessionId, {
      order: 'desc',
      after: eventId,
      limit: PAGE,
    })
    this.#hasOlder = older.pagination.has_more_after
    this.#following = false
    this.#add([...older.items].reverse().concat(event), 'row')
    this.#view.setItems(this.#shown, 'row')
    const index = this.#shown.findIndex((row) => row.event.id === eventId)
    this.#selected = this.#shown[index]
    if (index >= 0) this.#view.scrollToIndex(index)
    this.#showDetail()
    return { after: eventId }
  }

  async #loadOlder(): Promise<void> {
    const oldest = this.#rows[0]?.event.id
    if (!this.#hasOlder || this.#loadingOlder || oldest === undefined) return
    this.#loadingOlder = true
    this.#renderInfo()
    try {
      const page = await this.#client.events.list(this.#options.sessionId, {
        order: 'desc',
        after: oldest,
        limit: PAGE,
      })
      this.#hasOlder = page.pagination.has_more_after
      this.#prepend([...page.items].reverse())
    } catch (error) {
      this.#failed(error)
    } finally {
      this.#loadingOlder = false
      this.#renderInfo()
    }
  }

  /** Follows the session from `after` (or its last `tail` events), for as long as the view is open. */
  async #follow(from: { after?: string; tail?: number }): Promise<void> {
    try {
      for await (const event of this.#client.events.tail(this.#options.sessionId, {
        ...from,
        signal: this.#stop.signal,
        onConnection: (connected, error) =>
          this.#setConnection(connected ? 'live' : 'reconnecting', error && `(${error.message})`),
      })) {
        this.#add([event], this.#following ? 'end' : 'row')
      }
    } catch (error) {
      this.#setConnection('ended')
      this.#failed(error)
    }
  }

  /** Asks after the runs still active: a completed run writes no event that would say so. */
  async #pollRuns(): Promise<void> {
    if (document.hidden || this.#connection !== 'live') return
    const active = this.#runs.all().filter((run) => run.status === 'active')
    let changed = false
    for (const run of active) {
      try {
        changed = this.#runs.see(await this.#client.serverRuns.get(this.#options.sessionId, run.id)) || changed
      } catch {
        // The next round asks again.
      }
    }
    if (changed) this.#renderRuns()
  }

  // ---- the rows ----

  /** New events at the end: their rows are shown (following) or counted (paused). */
  #add(events: SessionEvent[], keep: 'end' | 'row'): void {
    let runsChanged = false
    for (const event of events) {
      runsChanged = this.#runs.see(event.server_run) || runsChanged
      runsChanged = this.#runs.see(event.server_run_error?.server_run ?? null) || runsChanged
      for (const row of rowsOf(event)) {
        this.#rows.push(row)
        if (!passes(row, this.#filters)) continue
        if (this.#query !== '' && matches(row, this.#query)) this.#matches.push(this.#shown.length)
        this.#shown.push(row)
        if (!this.#following) this.#unseen++
      }
    }
    if (runsChanged) this.#renderRuns()
    this.#scheduleRender(keep)
  }

  /** Older events at the start: the rows in view stay where they are. */
  #prepend(events: SessionEvent[]): void {
    const rows = events.flatMap(rowsOf)
    for (const event of events) this.#runs.see(event.server_run)
    this.#rows = rows.concat(this.#rows)
    this.#refilter('row')
    this.#renderRuns()
  }

  /** The filters or the search changed: what is shown and what matches, again. */
  #refilter(keep: 'end' | 'row'): void {
    this.#shown = this.#rows.filter((row) => passes(row, this.#filters))
    this.#matches = []
    if (this.#query !== '') this.#shown.forEach((row, i) => matches(row, this.#query) && this.#matches.push(i))
    this.#matchAt = -1
    this.#view.setItems(this.#shown, keep)
    this.#view.refresh()
    this.#renderInfo()
    this.#renderSearchCount()
  }

  #scheduleRender(keep: 'end' | 'row'): void {
    if (this.#pendingRender) return
    this.#pendingRender = true
    requestAnimationFrame(() => {
      this.#pendingRender = false
      this.#view.setItems(this.#shown, this.#following ? 'end' : keep)
      this.#renderInfo()
      this.#renderSearchCount()
    })
  }

  #render(): void {
    this.#view.setItems(this.#shown, this.#following ? 'end' : 'row')
    this.#renderRuns()
    this.#renderInfo()
    this.#setConnection(this.#connection)
  }

  // ---- following and scrolling ----

  #scrolled(atEnd: boolean, nearStart: boolean): void {
    if (atEnd && !this.#following) {
      this.#following = true
      this.#unseen = 0
      this.#renderInfo()
    } else if (!atEnd && this.#following && this.#shown.length > 0) {
      this.#following = false
      this.#renderInfo()
    }
    if (nearStart) void this.#loadOlder()
  }

  #jumpToLatest(): void {
    this.#following = true
    this.#unseen = 0
    this.#view.scrollToEnd()
    this.#renderInfo()
  }

  // ---- the page's parts ----

  #layout(): SessionViewParts {
    return layoutSessionView(this.#options.root, this.#options.sessionId, this.#view.element, {
      onFilters: (filters) => {
        this.#filters = filters
        this.#refilter(this.#following ? 'end' : 'row')
      },
      onQuery: (query) => {
        this.#query = query
        this.#refilter(this.#following ? 'end' : 'row')
      },
      onNextMatch: (step) => this.#nextMatch(step),
      onJumpToLatest: () => this.#jumpToLatest(),
    })
  }

  #renderRow(row: Row, element: HTMLDivElement): void {
    renderRow(row, element, { selected: this.#selected, target: this.#target, query: this.#query }, (selected) =>
      this.#select(selected),
    )
  }

  #select(row: Row): void {
    this.#selected = row
    this.#view.refresh()
    this.#showDetail()
  }

  /** The selected line whole (wrapped), with its event, its run and a link to it. */
  #showDetail(): void {
    renderDetail(
      this.#ui.detail,
      this.#selected,
      { sessionId: this.#options.sessionId, query: this.#query, runs: this.#runs },
      () => {
        this.#selected = undefined
        this.#view.refresh()
        this.#showDetail()
      },
    )
  }

  #nextMatch(step: 1 | -1): void {
    if (this.#matches.length === 0) return
    this.#matchAt = (this.#matchAt + step + this.#matches.length) % this.#matches.length
    this.#following = false
    this.#view.scrollToIndex(this.#matches[this.#matchAt]!)
    this.#renderInfo()
    this.#renderSearchCount()
  }

  #renderSearchCount(): void {
    renderSearchCount(this.#ui.searchCount, {
      query: this.#query,
      matches: this.#matches.length,
      matchAt: this.#matchAt,
    })
  }

  #renderRuns(): void {
    renderRuns(this.#ui, this.#runs)
  }

  #renderInfo(): void {
    renderInfo(this.#ui, {
      rows: this.#rows.length,
      shown: this.#shown.length,
      loadingOlder: this.#loadingOlder,
      hasOlder: this.#hasOlder,
      following: this.#following,
      unseen: this.#unseen,
    })
  }

  #setConnection(state: Connection, why?: string): void {
    this.#connection = state
    renderConnection(this.#ui.status, state, why)
  }

  #say(text: string | undefined): void {
    this.#ui.message.hidden = text === undefined
    this.#ui.message.textContent = text ?? ''
  }

  #failed(error: unknown): void {
    if (this.#stop.signal.aborted) return
    if (error instanceof SessionEventsError && (error.status === 401 || error.status === 403)) {
      this.close()
      this.#options.onKeyRefused(error)
      return
    }
    if (error instanceof SessionEventsError && error.status === 404) {
      this.#say(`There is no session ${this.#options.sessionId} in this key's instance.`)
      return
    }
    this.#say(`Something went wrong: ${error instanceof Error ? error.message : String(error)}`)
  }
}
