// Bytes in, log lines out: a stream's chunks are decoded as UTF-8 and cut at line breaks, as they
// come. A line longer than the API takes is cut into pieces as soon as a piece is full, so a
// process that writes megabytes without a line break never makes us hold more than one piece.
import { StringDecoder } from 'node:string_decoder'
import { type LogLine, specValues } from '@session-events/client'

/**
 * The longest line the API takes (the spec's `LogLine.line` `maxLength`). Pieces are cut in
 * UTF-16 code units, never inside a surrogate pair, so a piece is within the limit however the
 * server counts characters.
 */
export const MAX_LINE_LENGTH = specValues.schemas.LogLine.properties.line.maxLength

export class LineSplitter {
  readonly #decoder = new StringDecoder('utf8')
  readonly #onLine: (line: string) => void
  readonly #maxLength: number
  /** The line being read: no line break yet, at most `maxLength` units. */
  #partial = ''

  constructor(onLine: (line: string) => void, maxLength: number = MAX_LINE_LENGTH) {
    this.#onLine = onLine
    this.#maxLength = maxLength
  }

  write(chunk: Buffer | string): void {
    this.#take(typeof chunk === 'string' ? chunk : this.#decoder.write(chunk))
  }

  /** The end of the stream: the last line, if it had no line break, is a line too. */
  end(): void {
    this.#take(this.#decoder.end())
    if (this.#partial !== '') this.#finish(this.#partial)
    this.#partial = ''
  }

  #take(text: string): void {
    let start = 0
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
      const line = this.#partial + text.slice(start, newline)
      this.#partial = ''
      this.#finish(line)
      start = newline + 1
    }
    this.#partial = this.#emitFullPieces(this.#partial + text.slice(start), false)
  }

  /** A line whose break has come: without the `\r` of a `\r\n`, cut into pieces if too long. */
  #finish(line: string): void {
    this.#onLine(this.#emitFullPieces(line.endsWith('\r') ? line.slice(0, -1) : line, true))
  }

  /**
   * Emits pieces while more than one piece is left; returns the rest, at most `maxLength`. A
   * line still being read keeps a trailing `\r` over that: it may be half of a `\r\n`.
   */
  #emitFullPieces(text: string, complete: boolean): string {
    const spare = !complete && text.endsWith('\r') ? 1 : 0
    while (text.length > this.#maxLength + spare) {
      let cut = this.#maxLength
      if (isHighSurrogate(text.charCodeAt(cut - 1))) cut--
      this.#onLine(text.slice(0, cut))
      text = text.slice(cut)
    }
    return text
  }
}

/** Log lines of one stream, from a readable of bytes (a child's stdout, our stdin). */
export function readLogLines(
  stream: NodeJS.ReadableStream,
  type: LogLine['type'],
  onLine: (line: LogLine) => void,
): Promise<void> {
  const splitter = new LineSplitter((line) => onLine({ type, line }))
  return new Promise((resolve, reject) => {
    stream.on('data', (chunk: Buffer | string) => splitter.write(chunk))
    stream.once('error', reject)
    // 'close' without 'end' when a stream is destroyed before its end (our stdin on Ctrl-C).
    let ended = false
    const end = () => {
      if (ended) return
      ended = true
      splitter.end()
      resolve()
    }
    stream.once('end', end)
    stream.once('close', end)
  })
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff
}
