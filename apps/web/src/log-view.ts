import { Virtualizer, elementScroll, observeElementOffset, observeElementRect } from '@tanstack/virtual-core'

// The list of log lines, virtualised (@tanstack/virtual-core): however many rows there are, the
// DOM holds those in view and a few either side, each made once while it stays in view. Rows are
// one line high, all alike, so a row's place is its index times the height, and keeping the
// view where it was when rows come in before it is one addition.

export interface LogViewOptions<T> {
  /** The height of a row, in pixels (the CSS's `--row-height`). */
  rowHeight: number
  /** Fills a fresh, empty element for `item`. */
  render(item: T, element: HTMLDivElement): void
  /** The view scrolled (by the user or the page): whether the end is in view, whether the start is near. */
  onScroll(atEnd: boolean, nearStart: boolean): void
}

/** How many rows from the start counts as near it: time to load older ones before they are needed. */
const NEAR_START_ROWS = 40

export class LogView<T extends object> {
  /** The element that scrolls; the page places it. */
  readonly element: HTMLDivElement
  readonly #content: HTMLDivElement
  readonly #options: LogViewOptions<T>
  readonly #virtualizer: Virtualizer<HTMLDivElement, HTMLDivElement>
  readonly #unmount: () => void
  #items: readonly T[] = []
  /** The elements in the DOM now, by the item they show. */
  #shown = new Map<T, HTMLDivElement>()

  constructor(options: LogViewOptions<T>) {
    this.#options = options
    this.element = document.createElement('div')
    this.element.className = 'log'
    this.element.tabIndex = 0
    this.#content = document.createElement('div')
    this.#content.className = 'log-content'
    this.element.appendChild(this.#content)
    this.#virtualizer = new Virtualizer<HTMLDivElement, HTMLDivElement>({
      count: 0,
      getScrollElement: () => this.element,
      estimateSize: () => options.rowHeight,
      overscan: 20,
      scrollToFn: elementScroll,
      observeElementRect,
      observeElementOffset,
      onChange: () => this.#render(),
    })
    this.#unmount = this.#virtualizer._didMount()
    this.#virtualizer._willUpdate()
    this.element.addEventListener('scroll', () => this.#scrolled(), { passive: true })
  }

  /**
   * Shows `items`. `keep` says what stays in view: the end (following), or the first row in view
   * now, wherever it moved to (rows came in before it, or filters changed).
   */
  setItems(items: readonly T[], keep: 'end' | 'row'): void {
    const anchor = keep === 'row' ? this.#firstInView() : undefined
    this.#items = items
    this.#virtualizer.setOptions({ ...this.#virtualizer.options, count: items.length })
    this.#content.style.height = `${items.length * this.#options.rowHeight}px`
    if (keep === 'end') this.scrollToEnd()
    else if (anchor) {
      const index = items.indexOf(anchor.item)
      if (index >= 0) this.element.scrollTop = index * this.#options.rowHeight + anchor.offset
    }
    this.#render()
  }

  /** Makes every row in view again (what they show changed: a search, a selection). */
  refresh(): void {
    for (const element of this.#shown.values()) element.remove()
    this.#shown.clear()
    this.#render()
  }

  scrollToEnd(): void {
    this.element.scrollTop = this.element.scrollHeight
  }

  /** Scrolls the row at `index` into the middle of the view. */
  scrollToIndex(index: number): void {
    const middle = index * this.#options.rowHeight - (this.element.clientHeight - this.#options.rowHeight) / 2
    this.element.scrollTop = Math.max(0, middle)
  }

  /** Whether the end is in view (within a row). */
  atEnd(): boolean {
    const { scrollTop, scrollHeight, clientHeight } = this.element
    return scrollHeight - scrollTop - clientHeight <= this.#options.rowHeight
  }

  /** How many rows the DOM holds now. */
  get rowsInDom(): number {
    return this.#shown.size
  }

  destroy(): void {
    this.#unmount()
    this.element.remove()
  }

  #scrolled(): void {
    this.#options.onScroll(this.atEnd(), this.element.scrollTop < NEAR_START_ROWS * this.#options.rowHeight)
  }

  /** The first row in view, and how far the view has scrolled past its top. */
  #firstInView(): { item: T; offset: number } | undefined {
    const index = Math.floor(this.element.scrollTop / this.#options.rowHeight)
    const item = this.#items[index]
    return item && { item, offset: this.element.scrollTop - index * this.#options.rowHeight }
  }

  #render(): void {
    const kept = new Map<T, HTMLDivElement>()
    for (const virtual of this.#virtualizer.getVirtualItems()) {
      const item = this.#items[virtual.index]
      if (item === undefined) continue
      let element = this.#shown.get(item)
      if (!element) {
        element = document.createElement('div')
        this.#options.render(item, element)
        this.#content.appendChild(element)
      }
      element.style.transform = `translateY(${virtual.index * this.#options.rowHeight}px)`
      kept.set(item, element)
    }
    for (const [item, element] of this.#shown) if (!kept.has(item)) element.remove()
    this.#shown = kept
  }
}
