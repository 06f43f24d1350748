/** What a push may ask of a simulcast stream: a layer by name, or the tallest picture up to a height. */
export const LAYER_NAMES = ['low', 'medium', 'high'] as const;
export type LayerName = (typeof LAYER_NAMES)[number];

/** The index (0 the lowest) of layer `name` of `count`: of two, `medium` is the lower. */
export function layerIndex(name: LayerName, count: number): number {
  if (name === 'high') return count - 1;
  return name === 'medium' && count > 2 ? 1 : 0;
}

/** The name of layer `index` of `count`. */
export function layerName(index: number, count: number): LayerName {
  if (index >= count - 1) return 'high';
  return index === 0 ? 'low' : 'medium';
}
