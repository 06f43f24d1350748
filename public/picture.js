// The "Picture" choice of the publish page and the console, as a push takes it.

/** A shape (`9:16 blur`: aspect, then fit), or a simulcast layer (`layer=low`); the empty choice asks nothing. */
export function pictureOf(value) {
  if (value.startsWith('layer=')) return { layer: value.slice('layer='.length) };
  const [aspect, fit] = value.split(' ');
  return { ...(aspect ? { aspect } : {}), ...(fit ? { fit } : {}) };
}
