import type { SessionEventsError } from '@session-events/client'
import { h, replaceChildren } from './dom.js'
import { clientFor, forgetKey, saveKey, savedKey } from './key.js'
import { SessionView } from './session-view.js'
import { showSessions } from './sessions-view.js'
import './style.css'

// The page: asks for a secret key once per tab, then shows the instance's sessions (`/`) or one
// session live (`/?session=ses_…`, and `&event=sev_…` to open it at one event). The URL holds
// nothing but those ids: the key stays in the tab (key.ts).

const root = document.getElementById('app')!
const params = new URLSearchParams(location.search)
const sessionId = params.get('session') ?? undefined
const eventId = params.get('event') ?? undefined

/** Why the last key was refused, shown above the form. */
function askForKey(refusal?: SessionEventsError): void {
  const input = h('input', {
    type: 'password',
    // No name: the key never goes into a form submission, a URL or the browser's form history.
    autocomplete: 'off',
    placeholder: 'metorial_sk_…',
    'aria-label': 'Secret key',
    required: true,
    spellcheck: 'false',
  })
  const form = h(
    'form',
    { class: 'key-form' },
    h('h1', {}, 'Session Events'),
    h(
      'p',
      {},
      'A secret key of the instance whose sessions you want to watch. It is kept for this tab only and sent only in the Authorization header.',
    ),
    refusal &&
      h(
        'p',
        { class: 'refused', role: 'alert' },
        refusal.status === 403
          ? `That key may not read sessions (${refusal.message}). Use a secret key (metorial_sk_…).`
          : `That key was refused: ${refusal.message}`,
      ),
    h('label', {}, 'Secret key ', input),
    h('button', { type: 'submit' }, 'Continue'),
  )
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const key = input.value.trim()
    if (key === '') return
    saveKey(key)
    start(key)
  })
  replaceChildren(root, form)
  input.focus()
}

function refused(error: SessionEventsError): void {
  forgetKey()
  askForKey(error)
}

function start(key: string): void {
  const client = clientFor(key)
  if (sessionId) {
    void new SessionView({ client, sessionId, eventId, root, onKeyRefused: refused }).open()
  } else {
    void showSessions({ client, root, onKeyRefused: refused })
  }
}

// "Forget key", wherever a view puts it.
root.addEventListener('click', (e) => {
  if (!(e.target instanceof HTMLElement) || e.target.dataset.action !== 'forget-key') return
  forgetKey()
  location.reload()
})

const key = savedKey()
if (key) start(key)
else askForKey()
