import { SessionEventsError, type Session, type SessionEventsClient } from '@session-events/client'
import { count, h, replaceChildren } from './dom.js'

// The instance's sessions, newest first (listSessions), each a link to its page; more on demand.

export interface SessionsViewOptions {
  client: SessionEventsClient
  root: HTMLElement
  onKeyRefused: (error: SessionEventsError) => void
}

export async function showSessions({ client, root, onKeyRefused }: SessionsViewOptions): Promise<void> {
  const body = h('tbody')
  const more = h('button', { type: 'button', class: 'more', hidden: true }, 'Older sessions')
  const message = h('p', { class: 'message', role: 'status', hidden: true })
  const open = h('form', { class: 'open-session' })
  const idInput = h('input', {
    type: 'text',
    placeholder: 'ses_…',
    'aria-label': 'Session id',
    pattern: 'ses_[0-9A-Za-z]{22}',
    required: true,
    autocomplete: 'off',
    spellcheck: 'false',
  })
  open.append(idInput, h('button', { type: 'submit' }, 'Open'))
  open.addEventListener('submit', (e) => {
    e.preventDefault()
    location.search = new URLSearchParams({ session: idInput.value.trim() }).toString()
  })
  replaceChildren(
    root,
    h(
      'header',
      { class: 'bar' },
      h('h1', {}, 'Sessions'),
      h('span', { class: 'hint' }, 'newest first: open one to watch it live'),
      h('button', { type: 'button', class: 'forget', 'data-action': 'forget-key' }, 'Forget key'),
    ),
    h(
      'main',
      { class: 'sessions' },
      open,
      message,
      h(
        'table',
        {},
        h(
          'thead',
          {},
          h('tr', {}, h('th', {}, 'Session'), h('th', {}, 'Status'), h('th', {}, 'Created'), h('th', {}, 'Metadata')),
        ),
        body,
      ),
      more,
    ),
  )

  let cursor: string | undefined
  let shown = 0
  const load = async () => {
    more.disabled = true
    try {
      const page = await client.sessions.list(cursor ? { cursor } : {})
      body.append(...page.items.map(sessionRow))
      shown += page.items.length
      cursor = page.pagination.has_more_after ? (page.pagination.next_cursor ?? undefined) : undefined
      more.hidden = cursor === undefined
      message.hidden = shown > 0
      message.textContent = shown === 0 ? 'No sessions yet in this instance.' : ''
      more.textContent = `Older sessions (${count(shown)} shown)`
    } catch (error) {
      if (error instanceof SessionEventsError && (error.status === 401 || error.status === 403)) {
        onKeyRefused(error)
        return
      }
      message.hidden = false
      message.textContent = `Could not list the sessions: ${error instanceof Error ? error.message : String(error)}`
    } finally {
      more.disabled = false
    }
  }
  more.addEventListener('click', () => void load())
  await load()
}

function sessionRow(session: Session): HTMLTableRowElement {
  const link = new URLSearchParams({ session: session.id }).toString()
  const metadata = Object.keys(session.metadata).length === 0 ? '' : JSON.stringify(session.metadata)
  return h(
    'tr',
    { 'data-session': session.id },
    h('td', {}, h('a', { href: `/?${link}` }, session.id)),
    h('td', { class: `status ${session.status}` }, session.status),
    h('td', { title: session.created_at }, session.created_at.replace('T', ' ').slice(0, 19)),
    h('td', { class: 'metadata' }, metadata),
  )
}
