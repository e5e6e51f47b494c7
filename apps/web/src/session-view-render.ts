// The session page's drawing: a log row, the selected line's detail, the run chips, the footer, the search count and the connection.
import { appendLine } from './ansi.js'
import { count, h, replaceChildren } from './dom.js'
import { shortRunId, type Row, type Runs } from './rows.js'
import type { SessionViewParts } from './session-view-layout.js'

export type Connection = 'connecting' | 'live' | 'reconnecting' | 'ended'

/** Fills a row's element: time, server, run, stream and the line, the search marked. */
export function renderRow(
  row: Row,
  element: HTMLDivElement,
  state: { selected: Row | undefined; target: string | undefined; query: string },
  onSelect: (row: Row) => void,
): void {
  const event = row.event
  element.className = `row ${row.stream}`
  if (row === state.selected) element.classList.add('selected')
  if (event.id === state.target) element.classList.add('target')
  element.dataset.event = event.id
  const run = event.server_run
  const time = h('span', { class: 'time', title: event.created_at }, event.created_at.slice(11, 23))
  const server = h('span', { class: 'server' }, run?.server.name ?? '-')
  const runId = h('span', { class: 'run', title: run?.id ?? '' }, run ? shortRunId(run.id) : '-')
  const stream = h('span', { class: 'stream' }, row.stream === 'error' ? 'error' : row.stream)
  const text = h('span', { class: 'text' })
  appendLine(text, row.text, state.query)
  element.replaceChildren(time, server, runId, stream, text)
  element.addEventListener('click', () => onSelect(row))
}

/** The selected line whole (wrapped), with its event, its run and a link to it. */
export function renderDetail(
  detail: HTMLElement,
  row: Row | undefined,
  state: { sessionId: string; query: string; runs: Runs },
  onClose: () => void,
): void {
  if (!row) {
    detail.hidden = true
    return
  }
  const run = row.event.server_run
  const link = new URL(location.href)
  link.search = new URLSearchParams({ session: state.sessionId, event: row.event.id }).toString()
  const text = h('pre', { class: 'detail-text' })
  appendLine(text, row.text, state.query)
  replaceChildren(
    detail,
    h(
      'div',
      { class: 'detail-head' },
      h('span', {}, row.event.created_at),
      h('span', {}, run ? `${run.server.name} · ${run.id} (${state.runs.get(run.id)?.status ?? run.status})` : '-'),
      h('span', {}, row.stream),
      h('a', { href: `${link.pathname}${link.search}`, class: 'permalink' }, 'Link to this line'),
      h('button', { type: 'button', class: 'close-detail' }, 'Close'),
    ),
    text,
  )
  detail.querySelector('.close-detail')!.addEventListener('click', onClose)
  detail.hidden = false
}

export function renderSearchCount(
  searchCount: HTMLElement,
  state: { query: string; matches: number; matchAt: number },
): void {
  const n = state.matches
  searchCount.textContent =
    state.query === ''
      ? ''
      : n === 0
        ? 'no match'
        : state.matchAt >= 0
          ? `${count(state.matchAt + 1)} of ${count(n)}`
          : `${count(n)} ${n === 1 ? 'match' : 'matches'}`
}

export function renderRuns(ui: Pick<SessionViewParts, 'runs' | 'runFilter'>, runs: Runs): void {
  const all = runs.all().sort((a, b) => (a.id < b.id ? -1 : 1))
  const chips = all.map((run) => {
    const chip = h(
      'button',
      { type: 'button', class: `run-chip ${run.status}`, 'data-run': run.id, title: run.id },
      `${run.server.name} ${shortRunId(run.id)} `,
      h('strong', {}, run.status),
    )
    chip.addEventListener('click', () => {
      ui.runFilter.value = ui.runFilter.value === run.id ? '' : run.id
      ui.runFilter.dispatchEvent(new Event('change'))
    })
    return chip
  })
  replaceChildren(ui.runs, ...chips)
  // The run filter's choices: every run, the chosen one kept.
  const chosen = ui.runFilter.value
  replaceChildren(
    ui.runFilter,
    h('option', { value: '' }, 'All runs'),
    ...all.map((run) => h('option', { value: run.id }, `${run.server.name} ${shortRunId(run.id)} (${run.status})`)),
  )
  ui.runFilter.value = chosen
}

export function renderInfo(
  ui: Pick<SessionViewParts, 'info' | 'newLines'>,
  state: { rows: number; shown: number; loadingOlder: boolean; hasOlder: boolean; following: boolean; unseen: number },
): void {
  const parts = [`${count(state.rows)} lines`]
  if (state.shown !== state.rows) parts.push(`${count(state.shown)} shown`)
  parts.push(
    state.loadingOlder ? 'loading older…' : state.hasOlder ? 'older lines above' : 'from the start of the session',
  )
  parts.push(state.following ? 'following' : 'paused')
  ui.info.textContent = parts.join(' · ')
  const button = ui.newLines
  button.hidden = state.following
  button.textContent = state.unseen > 0 ? `↓ ${count(state.unseen)} new` : '↓ Jump to latest'
  button.dataset.unseen = String(state.unseen)
}

export function renderConnection(status: HTMLElement, state: Connection, why?: string): void {
  status.dataset.state = state
  status.textContent = {
    connecting: 'Connecting…',
    live: 'Live',
    reconnecting: `Reconnecting…${why ? ` ${why}` : ''}`,
    ended: 'Not following',
  }[state]
}
