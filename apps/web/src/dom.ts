// Elements made from code, never from markup: text goes in as text nodes, so nothing a server or
// a log line says can become HTML. (The page's Content-Security-Policy holds this too: Trusted
// Types refuse every string given to innerHTML and its kind.)

type Child = Node | string | number | null | undefined | false

/** An element with its attributes (set as attributes, `class` included) and children (strings become text). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue
    element.setAttribute(name, value === true ? '' : value)
  }
  append(element, ...children)
  return element
}

/** Appends children, strings as text nodes. */
export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)))
  }
}

/** Replaces every child of `parent`. */
export function replaceChildren(parent: Element, ...children: Child[]): void {
  parent.replaceChildren()
  append(parent, ...children)
}

/** A count as people read it: `12,345`. */
export const count = (n: number) => n.toLocaleString('en-US')
