// Loaded into an API process with `node --expose-gc --import …/memory-probe.js apps/api/dist/main.js`
// (the API as it is, nothing of it changed): on the message "memory" over the IPC channel that the
// driver opened, it collects garbage and answers process.memoryUsage(), so that the driver can read
// the API's heap, not only its RSS (which /proc gives without help).

export interface MemoryAnswer {
  rss: number
  heapUsed: number
  heapTotal: number
  external: number
  arrayBuffers: number
}

if (process.send) {
  process.on('message', (message) => {
    if (message !== 'memory') return
    const gc = (globalThis as { gc?: () => void }).gc
    // Twice: what the first frees may let the second free more (weak references, finalizers).
    gc?.()
    gc?.()
    const m = process.memoryUsage()
    process.send!({
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
    } satisfies MemoryAnswer)
  })
  // The channel must not keep the process alive on its own.
  process.channel?.unref()
}
