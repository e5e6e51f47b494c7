// Cutting bytes into log lines: chunk boundaries anywhere, `\r\n`, and lines too long for the API.
import { describe, expect, it } from 'vitest'
import { LineSplitter, MAX_LINE_LENGTH } from '../src/lines.js'

/** The lines of `text` when it arrives in chunks of `size` bytes. */
function split(text: string | Buffer, size: number, maxLength?: number): string[] {
  const lines: string[] = []
  const splitter = new LineSplitter((line) => lines.push(line), maxLength)
  const bytes = Buffer.from(text)
  for (let i = 0; i < bytes.length; i += size) splitter.write(bytes.subarray(i, i + size))
  splitter.end()
  return lines
}

describe('LineSplitter', () => {
  it.each([1, 2, 3, 7, 1024])('cuts at line breaks, whatever the chunks (%i bytes)', (size) => {
    const text = 'first\nsecond\r\n\nünïcödé ☕ 𝄞\r\nlast, without a break'
    expect(split(text, size)).toEqual(['first', 'second', '', 'ünïcödé ☕ 𝄞', 'last, without a break'])
  })

  it('makes no line of a final line break, and keeps a lone \\r inside a line', () => {
    expect(split('a\nb\n', 64)).toEqual(['a', 'b'])
    expect(split('progress 10%\rprogress 20%\n', 64)).toEqual(['progress 10%\rprogress 20%'])
    expect(split('', 64)).toEqual([])
  })

  it(`cuts a line longer than ${MAX_LINE_LENGTH} characters into pieces, dropping nothing`, () => {
    const line = 'x'.repeat(MAX_LINE_LENGTH * 2 + 5)
    for (const size of [1000, 65_536, 200_000]) {
      const lines = split(`${line}\nnext\n`, size)
      expect(lines.map((l) => l.length)).toEqual([MAX_LINE_LENGTH, MAX_LINE_LENGTH, 5, 4])
      expect(lines.slice(0, 3).join('')).toBe(line)
    }
  })

  it('keeps a line of exactly the limit whole, with or without \\r\\n split across chunks', () => {
    const line = 'y'.repeat(10)
    expect(split(`${line}\n`, 3, 10)).toEqual([line])
    expect(split(`${line}\r\n`, 11, 10)).toEqual([line]) // the \r comes alone, the \n after it
    expect(split(`${line}z\r\n`, 11, 10)).toEqual([line, 'z'])
  })

  it('never cuts a surrogate pair in two', () => {
    const line = `${'a'.repeat(9)}😀${'b'.repeat(3)}` // the emoji takes units 10 and 11
    const lines = split(line, 4, 10)
    expect(lines).toEqual(['a'.repeat(9), `😀${'b'.repeat(3)}`])
  })

  it('gives invalid UTF-8 as U+FFFD, as a decoder does', () => {
    expect(split(Buffer.from([0x61, 0xff, 0x62, 0x0a]), 1)).toEqual(['a\ufffdb'])
  })
})
