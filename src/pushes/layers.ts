import { setTimeout as sleep } from 'node:timers/promises';
import { monotonicMs } from '../core/clock.js';
import type { VideoRequest } from '../pipeline/encoding.js';
import { layerIndex, layerName, type LayerName } from '../publishers/layer-names.js';
import type { Publisher } from '../publishers/publisher.js';

/** Browsers scale their lower simulcast layers by halves: without simulcast, a layer is made at that share of the height. */
const NOMINAL_SHARE = { low: 1 / 4, medium: 1 / 2, high: 1 } as const;

/** What a push is fed from, and what it asks of the picture. */
export interface LayerSource {
  publisher: Publisher;
  video: VideoRequest;
  /** The layer it sends (0 the lowest) of a simulcast stream. */
  spatial?: number;
}

/**
 * Where a push of `video.layer` takes its picture. A simulcast stream's layer, as it comes: its own
 * publisher (one per layer in use, shared by every push of it), the stream's for the top layer.
 * A stream without simulcast is transcoded to that layer's size (a quarter of the height for
 * `low`, half for `medium`), unless the request names a size or shape of its own. A height picks
 * the tallest layer up to it; each layer asked is waited for until it has a keyframe to tell its
 * size, at most `waitMs`.
 */
export async function layerSource(stream: Publisher, video: VideoRequest, waitMs: number): Promise<LayerSource> {
  const { layer } = video;
  const count = stream.layers;
  if (count > 1) {
    const spatial =
      layer === undefined
        ? count - 1
        : typeof layer === 'number'
          ? await tallestUpTo(stream, layer, waitMs)
          : layerIndex(layer, count);
    const publisher = await stream.layer(spatial);
    // A push that named no layer and does not pin it takes what comes after a short while: the top
    // layer may be paused for a long time (a publisher short of bandwidth).
    const asked = layer !== undefined || video.layerPolicy === 'pin';
    await onLayer(publisher, spatial, asked ? waitMs : Math.min(waitMs, DEFAULT_LAYER_WAIT_MS));
    return { publisher, video, spatial };
  }
  if (layer === undefined) return { publisher: stream, video };
  if (video.height || video.aspect) return { publisher: stream, video };
  const sourceHeight = stream.keyframe?.size?.height ?? 720;
  const height =
    typeof layer === 'number' ? Math.min(layer, sourceHeight) : Math.round(sourceHeight * NOMINAL_SHARE[layer]);
  return { publisher: stream, video: height < sourceHeight ? { ...video, height } : video };
}

/** How often a layer's publisher is looked at while it is waited for. */
const LAYER_CHECK_MS = 20;
/** How long a push that named no layer waits for the top one. */
const DEFAULT_LAYER_WAIT_MS = 2000;

/**
 * Waits, at most `waitMs`, until `publisher` forwards layer `spatial` and has a keyframe of it. A
 * consumer forwards the lowest layer with media until its own has some (the first second of a
 * publish): a push started then would begin at another size and change it at once.
 */
async function onLayer(publisher: Publisher, spatial: number, waitMs: number): Promise<void> {
  // On it, with a keyframe cached: nothing to wait for (most pushes of a live stream).
  if (publisher.currentLayer === spatial && publisher.hasKeyframe) return;
  const until = monotonicMs() + waitMs;
  let keyframeCame: (() => boolean) | undefined;
  while (monotonicMs() < until && !publisher.isClosed) {
    if (publisher.currentLayer !== spatial) keyframeCame = undefined;
    // The layer switched at a keyframe that may have come before it said so: the next one is asked for.
    else if (!keyframeCame) keyframeCame = askKeyframe(publisher);
    else if (keyframeCame()) return;
    await sleep(LAYER_CHECK_MS);
  }
}

/** Asks `publisher` for a keyframe now: the check returned tells whether one has come since. */
export function askKeyframe(publisher: Publisher): () => boolean {
  const seen = publisher.counters.keyframes;
  publisher.requestKeyframe(true);
  return () => publisher.counters.keyframes > seen;
}

/** The tallest layer no taller than `height`, the lowest if every one is. */
async function tallestUpTo(stream: Publisher, height: number, waitMs: number): Promise<number> {
  for (let spatial = stream.layers - 1; spatial > 0; spatial--) {
    const layer = await stream.layer(spatial);
    await layer.keyframeCached(waitMs).catch(() => undefined);
    const size = layer.keyframe?.size;
    if (size && size.height <= height) return spatial;
  }
  return 0;
}

/** The name of the layer a push's publisher sends now, of a simulcast stream. */
export function layerSent(publisher: Publisher): LayerName | undefined {
  const count = publisher.origin.layers;
  const current = publisher.currentLayer;
  return count > 1 && current !== undefined ? layerName(current, count) : undefined;
}
