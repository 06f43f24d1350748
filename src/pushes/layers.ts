import type { VideoRequest } from '../pipeline/encoding.js';
import { layerIndex, layerName, type LayerName } from '../publishers/layers.js';
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
  if (layer === undefined) return count > 1 ? { publisher: stream, video, spatial: count - 1 } : { publisher: stream, video };
  if (count > 1) {
    const spatial = typeof layer === 'number' ? await tallestUpTo(stream, layer, waitMs) : layerIndex(layer, count);
    return { publisher: await stream.layer(spatial), video, spatial };
  }
  if (video.height || video.aspect) return { publisher: stream, video };
  const sourceHeight = stream.keyframe?.size?.height ?? 720;
  const height = typeof layer === 'number' ? Math.min(layer, sourceHeight) : Math.round(sourceHeight * NOMINAL_SHARE[layer]);
  return { publisher: stream, video: height < sourceHeight ? { ...video, height } : video };
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
