/**
 * How long media written to an RTMP connection may wait to go out with what comes after it (ms).
 * A push writes about 77 messages a second (30 pictures, 47 AAC frames); handed to the kernel one
 * tick at a time, each is a `writev` of its own, and on a loopback or LAN destination the kernel
 * delivers each in the writer's thread. Merged over 40 ms they are about 25, for a delay an RTMP
 * destination (which buffers seconds) does not notice. SRS merges writes the same way (`mw_latency`).
 */
const MERGED_WRITE_MS = 40;

/** A writer that holds media back and hands it to its socket when told. */
export interface MergedWriter {
  flush(): void;
}

/** Writers with something held, on this thread; flushed together, then forgotten. */
const holding = new Set<MergedWriter>();
let timer: NodeJS.Timeout | undefined;

/** Has `writer` flushed within MERGED_WRITE_MS, with every other writer holding media on this thread. */
export function flushLater(writer: MergedWriter): void {
  holding.add(writer);
  timer ??= setTimeout(flushAll, MERGED_WRITE_MS);
}

function flushAll(): void {
  timer = undefined;
  const writers = [...holding];
  holding.clear();
  for (const writer of writers) writer.flush();
}
