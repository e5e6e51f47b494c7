// The wire of protobuf's binary form, as otlp/binary.ts reads it: a cursor whose every read checks
// its bounds and gives up (throws NOT_PLAIN) where fromBinary would refuse, guess or merge, so
// that the body is read by fromBinary instead.

/** Where a message is deeper than this, fromBinary reads the body (its limit is 100). */
export const MAX_DEPTH = 32

/** Not the plain form: fromBinary reads the body instead. */
class NotPlain {}
export const NOT_PLAIN = new NotPlain()

/** The wire types the plain form has (no groups). */
export const Wire = { Varint: 0, Fixed64: 1, Length: 2, Fixed32: 5 } as const
export type Wire = (typeof Wire)[keyof typeof Wire]

export type Bytes = ReturnType<Uint8Array['subarray']>

/** A cursor over the body. Every read checks its bounds, and gives up where fromBinary would refuse or guess. */
export class Reader {
  pos = 0
  readonly #view: DataView
  readonly #text: Buffer
  constructor(readonly buf: Uint8Array) {
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    this.#text = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  }

  /** A varint of at most 5 bytes, as an unsigned 32-bit number (tags, lengths, uint32). */
  uint32(): number {
    const buf = this.buf
    let pos = this.pos
    if (pos >= buf.length) throw NOT_PLAIN
    let byte = buf[pos++]!
    if (byte < 0x80) {
      this.pos = pos
      return byte
    }
    let value = byte & 0x7f
    for (let shift = 7; shift < 35; shift += 7) {
      if (pos >= buf.length) throw NOT_PLAIN
      byte = buf[pos++]!
      if (shift === 28 && byte > 0x0f) throw NOT_PLAIN // more than 32 bits
      value += (byte & 0x7f) * 2 ** shift
      if (byte < 0x80) {
        this.pos = pos
        return value
      }
    }
    throw NOT_PLAIN
  }

  /** int32 (an open enum): a non-negative value of at most 31 bits; the 10-byte negative form is fromBinary's to read. */
  int32(): number {
    const value = this.uint32()
    if (value > 0x7fffffff) throw NOT_PLAIN
    return value
  }

  /** int64 as a signed bigint, from a varint of at most 10 bytes whose last holds one bit. */
  int64(): bigint {
    const buf = this.buf
    let low = 0
    let high = 0
    for (let i = 0; i < 10; i++) {
      if (this.pos >= buf.length) throw NOT_PLAIN
      const byte = buf[this.pos++]!
      const bits = byte & 0x7f
      if (i < 4) low += bits * 2 ** (7 * i)
      else if (i === 4) {
        low += (bits & 0x0f) * 2 ** 28
        high += bits >>> 4
      } else {
        if (i === 9 && byte > 0x01) throw NOT_PLAIN
        high += bits * 2 ** (7 * i - 32)
      }
      if (byte < 0x80) return BigInt.asIntN(64, (BigInt(high) << 32n) | BigInt(low))
    }
    throw NOT_PLAIN
  }

  bool(): boolean {
    const value = this.uint32()
    if (value > 1) throw NOT_PLAIN
    return value === 1
  }

  /** Where the next `n` bytes start, past which the cursor moves. */
  #take(n: number): number {
    const at = this.pos
    if (at + n > this.buf.length) throw NOT_PLAIN
    this.pos = at + n
    return at
  }

  fixed64(): bigint {
    return this.#view.getBigUint64(this.#take(8), true)
  }

  fixed32(): number {
    return this.#view.getUint32(this.#take(4), true)
  }

  double(): number {
    return this.#view.getFloat64(this.#take(8), true)
  }

  /** The end of a length-delimited field that starts here. */
  end(): number {
    const length = this.uint32()
    const end = this.pos + length
    if (end > this.buf.length) throw NOT_PLAIN
    return end
  }

  bytes(): Bytes {
    const end = this.end()
    const bytes = this.buf.subarray(this.pos, end)
    this.pos = end
    return bytes
  }

  /**
   * A string: Node's decoder and fromBinary's (TextDecoder, fatal) agree on valid UTF-8; where
   * the text has U+FFFD, the bytes were invalid (fromBinary refuses them) or held one: fromBinary's.
   */
  string(): string {
    const end = this.end()
    const text = this.#text.toString('utf8', this.pos, end)
    this.pos = end
    if (text.includes('\uFFFD')) throw NOT_PLAIN
    return text
  }
}

/** A field's number and wire type, from its tag; the wire type must be the field's own. */
export function tag(r: Reader): number {
  const value = r.uint32()
  if (value < 8) throw NOT_PLAIN // field number 0
  return value
}

/** The reader, to read a field whose tag says this wire type (any other is not the plain form). */
export function field(r: Reader, tagValue: number, wire: Wire): Reader {
  if ((tagValue & 7) !== wire) throw NOT_PLAIN
  return r
}

export function fieldOf(tagValue: number): number {
  return tagValue >>> 3
}

/** The message of a length-delimited field, read with its own reader, to the field's end exactly. */
export function nested<T>(
  r: Reader,
  tagValue: number,
  depth: number,
  read: (r: Reader, end: number, depth: number) => T,
): T {
  field(r, tagValue, Wire.Length)
  if (depth >= MAX_DEPTH) throw NOT_PLAIN
  const end = r.end()
  const message = read(r, end, depth + 1)
  if (r.pos !== end) throw NOT_PLAIN
  return message
}
