// The session page's parts: builds the header, toolbar, log pane, detail and footer, and wires their controls to the view.
import { h, replaceChildren } from './dom.js'
import type { Filters } from './rows.js'

/** The elements the session view writes to after the layout. */
export interface SessionViewParts {
  status: HTMLElement
  runs: HTMLElement
  runFilter: HTMLSelectElement
  streamFilter: HTMLSelectElement
  typeFilter: HTMLSelectElement
  search: HTMLInputElement
  searchCount: HTMLElement
  info: HTMLElement
  newLines: HTMLButtonElement
  detail: HTMLElement
  message: HTMLElement
}

/** What the controls tell the view. */
export interface SessionViewControls {
  /** A filter changed: the filters now. */
  onFilters: (filters: Filters) => void
  /** The search changed (after a pause in typing): the search now, lower case; '' for none. */
  onQuery: (query: string) => void
  /** Enter in the search: to the next match (1) or the one before (-1). */
  onNextMatch: (step: 1 | -1) => void
  /** The new lines button. */
  onJumpToLatest: () => void
}

export function layoutSessionView(
  root: HTMLElement,
  sessionId: string,
  logElement: HTMLElement,
  controls: SessionViewControls,
): SessionViewParts {
  const status = h('span', { class: 'connection', 'data-state': 'connecting' }, 'Connecting…')
  const runFilter = h('select', { 'aria-label': 'Run' }, h('option', { value: '' }, 'All runs'))
  const streamFilter = h(
    'select',
    { 'aria-label': 'Stream' },
    h('option', { value: '' }, 'stdout and stderr'),
    h('option', { value: 'stdout' }, 'stdout'),
    h('option', { value: 'stderr' }, 'stderr'),
  )
  const typeFilter = h(
    'select',
    { 'aria-label': 'Type' },
    h('option', { value: '' }, 'Logs and errors'),
    h('option', { value: 'server_logs' }, 'Logs'),
    h('option', { value: 'server_run_error' }, 'Errors'),
  )
  const search = h('input', {
    type: 'search',
    placeholder: 'Search loaded lines (Enter: next)',
    'aria-label': 'Search',
    autocomplete: 'off',
    spellcheck: 'false',
  })
  const searchCount = h('span', { class: 'search-count' })
  const newLines = h('button', { type: 'button', class: 'new-lines', hidden: true })
  const info = h('span', { class: 'info' })
  const runs = h('div', { class: 'runs', 'aria-label': 'Runs' })
  const detail = h('section', { class: 'detail', hidden: true, 'aria-label': 'Selected line' })
  const message = h('div', { class: 'message', role: 'status', hidden: true })

  const changed = () => {
    controls.onFilters({
      runId: runFilter.value || undefined,
      stream: (streamFilter.value || undefined) as Filters['stream'],
      type: (typeFilter.value || undefined) as Filters['type'],
    })
  }
  for (const select of [runFilter, streamFilter, typeFilter]) select.addEventListener('change', changed)
  let searchTimer: ReturnType<typeof setTimeout> | undefined
  search.addEventListener('input', () => {
    clearTimeout(searchTimer)
    searchTimer = setTimeout(() => {
      controls.onQuery(search.value.trim().toLowerCase())
    }, 120)
  })
  search.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return
    e.preventDefault()
    controls.onNextMatch(e.shiftKey ? -1 : 1)
  })
  newLines.addEventListener('click', () => controls.onJumpToLatest())

  replaceChildren(
    root,
    h(
      'header',
      { class: 'bar' },
      h('a', { href: '/', class: 'home' }, '← Sessions'),
      h('h1', {}, sessionId),
      status,
      h('button', { type: 'button', class: 'forget', 'data-action': 'forget-key' }, 'Forget key'),
    ),
    runs,
    h('div', { class: 'toolbar' }, runFilter, streamFilter, typeFilter, search, searchCount),
    message,
    h('main', { class: 'log-pane' }, logElement, newLines),
    detail,
    h('footer', { class: 'bar' }, info),
  )
  return {
    status,
    runs,
    runFilter,
    streamFilter,
    typeFilter,
    search,
    searchCount,
    info,
    newLines,
    detail,
    message,
  }
}
