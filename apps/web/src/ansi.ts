import Anser from 'anser'

// A log line as the page shows it: its colours and text styles (ANSI SGR, `ESC [ … m`) rendered
// as styled text, every other escape sequence removed whole (cursor moves, a window title, an
// OSC 8 hyperlink and its URL: a link in a log line is never a link here), and no character
// reaching the page but as text. Styles are set through the element's style object, which the
// page's Content-Security-Policy allows (it refuses style attributes written as markup).

// The escape sequences that are not SGR: OSC strings (`ESC ]` … BEL or `ESC \`, or to the end
// when unterminated), DCS, SOS, PM and APC strings, CSI sequences that end in anything but `m`,
// other two-character escapes, and their 8-bit C1 forms.
const NOT_SGR = new RegExp(
  [
    '\\u001b\\][^\\u0007\\u001b]*(?:\\u0007|\\u001b\\\\)?',
    '\\u009d[^\\u0007\\u001b\\u009c]*(?:\\u0007|\\u009c|\\u001b\\\\)?',
    '\\u001b[PX^_][^\\u001b]*(?:\\u001b\\\\)?',
    '[\\u0090\\u0098\\u009e\\u009f][^\\u001b\\u009c]*(?:\\u009c|\\u001b\\\\)?',
    '(?:\\u001b\\[|\\u009b)[0-?]*[ -/]*[@-ln-~]',
    '\\u001b[ -/]*[0-Z\\\\-~]',
  ].join('|'),
  'g',
)
/** Every SGR sequence, for the text without any escape sequence. */
// oxlint-disable-next-line no-control-regex -- escape sequences are what it finds
const SGR = /(?:\u001b\[|\u009b)[0-?]*[ -/]*m/g
/** Control characters left after that (a lone ESC, a carriage return, a bell…): shown as nothing. Tab stays. */
// oxlint-disable-next-line no-control-regex -- control characters are what it removes
const CONTROLS = /[\u0000-\u0008\u000a-\u001a\u001c-\u001f\u007f-\u009f]/g

/** Whether a line holds any control character (an escape sequence's ESC, a C1 control, a CR…) but tab. */
// oxlint-disable-next-line no-control-regex -- control characters are what it finds
const HAS_CONTROLS = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/

/** The line with every escape sequence but SGR removed, and control characters but ESC and tab. */
function colourOnly(line: string): string {
  return line.replace(NOT_SGR, '').replace(CONTROLS, '')
}

/** The line's text as a person reads it: no escape sequence at all (for search). */
export function plainText(line: string): string {
  if (!HAS_CONTROLS.test(line)) return line
  return colourOnly(line).replace(SGR, '').replaceAll('\u001b', '')
}

/** An `r, g, b` colour as anser gives it, or undefined for anything else. */
function rgb(value: string | null | undefined): string | undefined {
  return value && /^\d{1,3}, \d{1,3}, \d{1,3}$/.test(value) ? `rgb(${value})` : undefined
}

/**
 * Appends the line to `parent` as styled text nodes; the parts that match `query` (lower case,
 * searched case-insensitively in the plain text) are wrapped in `<mark>`.
 */
export function appendLine(parent: HTMLElement, line: string, query = ''): void {
  // Most lines hold no control character at all: text as it is.
  if (!HAS_CONTROLS.test(line)) {
    appendMarked(parent, line, 0, query === '' ? [] : matchesOf(line.toLowerCase(), query))
    return
  }
  const parts = Anser.ansiToJson(colourOnly(line), { json: true, remove_empty: true })
  const plain = parts.map((p) => p.content.replaceAll('\u001b', '')).join('')
  const marks = query === '' ? [] : matchesOf(plain.toLowerCase(), query)
  let at = 0
  for (const part of parts) {
    const content = part.content.replaceAll('\u001b', '')
    if (content === '') continue
    const styled = styleOf(part)
    const target = styled ?? parent
    appendMarked(target, content, at, marks)
    if (styled) parent.appendChild(styled)
    at += content.length
  }
}

/** A span styled as an anser part says (reverse video is swapped already), or undefined for plain text. */
function styleOf(part: Anser.AnserJsonEntry): HTMLSpanElement | undefined {
  const fg = rgb(part.fg_truecolor) ?? rgb(part.fg)
  const bg = rgb(part.bg_truecolor) ?? rgb(part.bg)
  const decorations = part.decorations ?? []
  if (!fg && !bg && decorations.length === 0) return undefined
  const span = document.createElement('span')
  if (fg) span.style.color = fg
  if (bg) span.style.backgroundColor = bg
  if (decorations.includes('bold')) span.style.fontWeight = 'bold'
  if (decorations.includes('dim')) span.style.opacity = '0.7'
  if (decorations.includes('italic')) span.style.fontStyle = 'italic'
  const lines = [
    decorations.includes('underline') && 'underline',
    decorations.includes('strikethrough') && 'line-through',
  ]
  const textDecoration = lines.filter(Boolean).join(' ')
  if (textDecoration) span.style.textDecoration = textDecoration
  return span
}

/** The [start, end) ranges of `query` in `text`, without overlaps. */
export function matchesOf(text: string, query: string): [number, number][] {
  const found: [number, number][] = []
  if (query === '') return found
  for (let i = text.indexOf(query); i >= 0; i = text.indexOf(query, i + query.length)) found.push([i, i + query.length])
  return found
}

/** Appends `text` (which starts at `offset` of the line) with the parts inside `marks` wrapped in `<mark>`. */
function appendMarked(parent: HTMLElement, text: string, offset: number, marks: [number, number][]): void {
  let at = 0
  for (const [start, end] of marks) {
    const from = Math.max(start - offset, at)
    const to = Math.min(end - offset, text.length)
    if (to <= from) continue
    if (from > at) parent.appendChild(document.createTextNode(text.slice(at, from)))
    const mark = document.createElement('mark')
    mark.textContent = text.slice(from, to)
    parent.appendChild(mark)
    at = to
  }
  if (at < text.length) parent.appendChild(document.createTextNode(text.slice(at)))
}
