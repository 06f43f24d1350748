// The operator console: every stream and push, as the gateway tells it over server-sent events
// (read with fetch, so the control API key goes in a header, never in a URL), and the REST API's
// commands on them.
import { watch } from '/sdk/gateway.js';
import { pictureOf } from '/picture.js';

const $ = (id) => document.getElementById(id);
const KEY = 'gateway-console-key';
let sounds = [];
/** bytesSent and time of each push in the last view, for its bitrate. */
const previous = new Map();
/** What the charts show: the last minutes of each stream's and each push's figures, by key. */
const CHART_MS = 5 * 60_000;
const histories = new Map();
const SVG = 'http://www.w3.org/2000/svg';

/** Adds a sample to the history of `key` (older than the chart's span dropped); answers the history. */
function remember(key, at, sample) {
  const history = histories.get(key) ?? [];
  history.push({ at, ...sample });
  while (history.length && at - history[0].at > CHART_MS) history.shift();
  histories.set(key, history);
  return history;
}

/**
 * Draws `field` of `history` into the inline chart `svg`: a line over the last minutes (up to five), scaled
 * to its largest value, and a red mark wherever `marked` says (a reconnect). Drawn with DOM calls
 * and numbers only: nothing the gateway sends becomes markup.
 */
function chart(svg, history, field, unit, marked) {
  const [width, height] = [120, 28];
  const end = history.at(-1)?.at ?? 0;
  // A minute at first, growing with the history up to five: a new push's line is not a dot at the edge.
  const span = Math.min(CHART_MS, Math.max(60_000, end - (history[0]?.at ?? end)));
  const x = (at) => (width * (at - (end - span))) / span;
  const values = history.map((s) => s[field]).filter((v) => typeof v === 'number');
  const top = Math.max(1, ...values);
  const y = (v) => height - 2 - ((height - 4) * v) / top;
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute(
    'points',
    history
      .filter((s) => typeof s[field] === 'number')
      .map((s) => `${x(s.at).toFixed(1)},${y(s[field]).toFixed(1)}`)
      .join(' '),
  );
  line.setAttribute('class', 'line');
  const parts = [line];
  for (const s of history.filter((s, i) => i > 0 && marked?.(history[i - 1], s))) {
    const mark = document.createElementNS(SVG, 'line');
    for (const [name, value] of [
      ['x1', x(s.at)],
      ['x2', x(s.at)],
      ['y1', 0],
      ['y2', height],
    ])
      mark.setAttribute(name, String(value));
    mark.setAttribute('class', 'mark');
    parts.push(mark);
  }
  const title = document.createElementNS(SVG, 'title');
  title.textContent = `last ${duration(span)}: now ${values.at(-1) ?? '?'} ${unit}, highest ${Math.round(top)} ${unit}`;
  parts.push(title);
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.replaceChildren(...parts);
  svg.dataset.points = String(values.length);
}

function headers() {
  const key = sessionStorage.getItem(KEY);
  return { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) };
}

function tell(text) {
  $('message').textContent = text;
}

function connection(text, kind = '') {
  $('connection').textContent = text;
  $('connection').className = `badge ${kind}`;
}

/** Sends a REST command; an error is shown with the gateway's message. */
async function command(path, body) {
  const response = await fetch(path, { method: 'POST', headers: headers(), body: JSON.stringify(body) });
  if (response.ok) {
    tell('');
    return response;
  }
  const error = await response.json().catch(() => ({ message: response.statusText }));
  tell(`${path.split('/').slice(-2).join('/')}: ${error.message}`);
  if (response.status === 401) askKey();
  return undefined;
}

function askKey() {
  $('keyForm').hidden = false;
  connection('API key needed', 'bad');
}

const duration = (ms) => {
  const s = Math.max(0, Math.floor(ms / 1000));
  return s >= 3600
    ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
    : s >= 60
      ? `${Math.floor(s / 60)} min ${s % 60} s`
      : `${s} s`;
};

function streamCard(name) {
  let card = document.querySelector(`.stream[data-name="${CSS.escape(name)}"]`);
  if (card) return card;
  card = $('stream-card').content.firstElementChild.cloneNode(true);
  card.dataset.name = name;
  card.querySelector('.name').textContent = name;
  card.querySelector('.snapshot').addEventListener('click', async () => {
    const response = await command('/rest-api/stream/snapshot', { name });
    if (!response) return;
    const picture = card.querySelector('.picture');
    if (picture.src) URL.revokeObjectURL(picture.src);
    picture.src = URL.createObjectURL(await response.blob());
    picture.alt = `latest keyframe of ${name}`;
    picture.hidden = false;
  });
  card
    .querySelector('.watch')
    .addEventListener('click', () => (card.viewer ? stopWatching(card) : watchStream(card, name)));
  card
    .querySelector('.record')
    .addEventListener('click', () => command('/rest-api/push/startup', { streamName: name, rtmpUrl: 'record://' }));
  card.querySelector('.start').addEventListener('submit', async (event) => {
    event.preventDefault();
    const rtmpUrl = card.querySelector('.url').value.trim();
    const button = card.querySelector('.start button');
    button.disabled = true;
    const picture = pictureOf(card.querySelector('.shape').value);
    const started = await command('/rest-api/push/startup', {
      streamName: name,
      rtmpUrl,
      rtmpTransponderFullUrl: card.querySelector('.full').checked,
      ...picture,
    });
    button.disabled = false;
    if (started) card.querySelector('.url').value = '';
  });
  $('streams').append(card);
  return card;
}

/** Watches the stream over WHEP in the card's player: what the gateway receives, as it arrives. */
async function watchStream(card, name) {
  const button = card.querySelector('.watch');
  const player = card.querySelector('.player');
  button.disabled = true;
  try {
    card.viewer = await watch({ name, video: player, token: sessionStorage.getItem(KEY) ?? undefined });
    player.hidden = false;
    button.textContent = 'Stop watching';
  } catch (error) {
    tell(`watch: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function stopWatching(card) {
  void card.viewer?.stop();
  card.viewer = undefined;
  card.querySelector('.player').hidden = true;
  card.querySelector('.watch').textContent = 'Watch';
}

function pushRow(card, push) {
  const id = push.mediaSessionId;
  let row = card.querySelector(`.push[data-id="${id}"]`);
  if (row) return row;
  row = $('push-row').content.firstElementChild.cloneNode(true);
  row.dataset.id = id;
  row
    .querySelector('.mute')
    .addEventListener('click', () =>
      command(`/rest-api/push/${row.dataset.muted === 'true' ? 'unmute' : 'mute'}`, { mediaSessionId: id }),
    );
  row.querySelector('.play').addEventListener('click', () => {
    const soundFile = row.querySelector('.sound').value;
    if (soundFile) command('/rest-api/push/sound_on', { mediaSessionId: id, soundFile, loop: false });
  });
  row
    .querySelector('.silence')
    .addEventListener('click', () => command('/rest-api/push/sound_off', { mediaSessionId: id }));
  row
    .querySelector('.terminate')
    .addEventListener('click', () => command('/rest-api/push/terminate', { mediaSessionId: id }));
  const select = row.querySelector('.sound');
  for (const name of sounds) select.append(new Option(name, name));
  card.querySelector('.pushes').append(row);
  return row;
}

/** A mixer's part of its stream's card: its layout, its inputs (each publishing or a placeholder) and their commands. */
function renderMixer(card, mixer) {
  const part = card.querySelector('.mixer');
  part.hidden = !mixer;
  if (!mixer) return;
  if (!part.dataset.uri) {
    part.dataset.uri = mixer.uri;
    part
      .querySelector('.layout')
      .addEventListener('change', (event) =>
        command('/rest-api/mixer/set_layout', { uri: mixer.uri, layout: event.target.value }),
      );
    part
      .querySelector('.end-mixer')
      .addEventListener('click', () => command('/rest-api/mixer/terminate', { uri: mixer.uri }));
    part.querySelector('.add-input').addEventListener('submit', async (event) => {
      event.preventDefault();
      const field = part.querySelector('.input-name');
      if (await command('/rest-api/mixer/add', { uri: mixer.uri, remoteStreamName: field.value.trim() }))
        field.value = '';
    });
  }
  part.querySelector('.mixer-uri').textContent = mixer.uri;
  part.querySelector('.mixer-size').textContent = `${mixer.width}×${mixer.height} ${mixer.fps} fps`;
  const layout = part.querySelector('.layout');
  if (document.activeElement !== layout) layout.value = mixer.layout;
  const list = part.querySelector('.inputs');
  const rows = mixer.inputs.map((input) => {
    const item = document.createElement('li');
    item.className = 'input';
    item.dataset.stream = input.streamName;
    const state = input.publishing ? 'publishing' : 'placeholder (not publishing)';
    item.textContent = `${input.streamName}${input.label ? ` “${input.label}”` : ''} · ${state}${input.audioMuted ? ' · muted' : ''} `;
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = 'Remove';
    remove.addEventListener('click', () =>
      command('/rest-api/mixer/remove', { uri: mixer.uri, remoteStreamName: input.streamName }),
    );
    item.append(remove);
    return item;
  });
  list.replaceChildren(...rows);
}

/** When each stream's thumbnail was last fetched (performance.now()), by name. */
const thumbnailFetched = new Map();

/**
 * The grid of the publishing streams' thumbnails, each fetched again every thumbnail interval (with the
 * key, shown from a blob); hidden while the gateway takes none (`thumbnailIntervalS` 0).
 */
function renderThumbnails(view) {
  const grid = $('thumbnails');
  const intervalMs = (view.thumbnailIntervalS ?? 0) * 1000;
  grid.hidden = intervalMs === 0 || view.streams.length === 0;
  const names = new Set(intervalMs === 0 ? [] : view.streams.map((s) => s.name));
  for (const figure of grid.querySelectorAll('figure')) {
    if (names.has(figure.dataset.name)) continue;
    const img = figure.querySelector('img');
    if (img.src) URL.revokeObjectURL(img.src);
    figure.remove();
    thumbnailFetched.delete(figure.dataset.name);
  }
  for (const name of [...names].sort()) {
    let figure = grid.querySelector(`figure[data-name="${CSS.escape(name)}"]`);
    if (!figure) {
      figure = document.createElement('figure');
      figure.dataset.name = name;
      const img = Object.assign(document.createElement('img'), { alt: `thumbnail of ${name}` });
      const caption = document.createElement('figcaption');
      caption.textContent = name;
      figure.append(img, caption);
      grid.append(figure);
    }
    const last = thumbnailFetched.get(name);
    if (last !== undefined && performance.now() - last < intervalMs) continue;
    thumbnailFetched.set(name, performance.now());
    void fetchThumbnail(figure, name);
  }
}

async function fetchThumbnail(figure, name) {
  const response = await fetch(`/rest-api/stream/thumbnail?streamName=${encodeURIComponent(name)}`, {
    headers: headers(),
    cache: 'no-cache',
  }).catch(() => undefined);
  if (!response?.ok || !figure.isConnected) return; // none yet: the next interval asks again
  const img = figure.querySelector('img');
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(await response.blob());
  figure.dataset.at = response.headers.get('last-modified') ?? '';
}

function render(view) {
  renderThumbnails(view);
  const now = Date.parse(view.at);
  const names = new Set([...view.streams.map((s) => s.name), ...view.pushes.map((p) => p.sourceStreamName)]);
  for (const card of document.querySelectorAll('.stream')) {
    if (names.has(card.dataset.name)) continue;
    stopWatching(card);
    card.remove();
  }
  const kept = new Set([
    ...view.streams.map((s) => `stream:${s.name}`),
    ...view.pushes.map((p) => `push:${p.mediaSessionId}`),
  ]);
  for (const key of histories.keys()) if (!kept.has(key)) histories.delete(key);
  for (const name of [...names].sort()) {
    const card = streamCard(name);
    const stream = view.streams.find((s) => s.name === name);
    renderMixer(
      card,
      (view.mixers ?? []).find((m) => m.localStreamName === name),
    );
    card.querySelector('.what').textContent = stream ? 'publishing' : 'not publishing';
    card.querySelector('.what').className = `badge what ${stream ? 'live' : ''}`;
    card.querySelector('.start button').disabled = !stream;
    card.querySelector('.snapshot').disabled = !stream;
    card.querySelector('.watch').disabled = !stream && !card.viewer;
    card.querySelector('.facts').textContent = stream
      ? [
          stream.video
            ? `${stream.video.codec} ${stream.video.width ?? '?'}×${stream.video.height ?? '?'} ${stream.video.frameRate ?? '?'} fps`
            : 'no video',
          stream.audio ? stream.audio.codec : 'no audio',
          `${stream.bitrateKbps} kb/s in`,
          `up ${duration(now - Date.parse(stream.publishingSince ?? stream.createdAt))}`,
          `from ${stream.clientAddress}`,
          `${stream.framesLost} frames lost`,
        ].join(' · ')
      : 'its pushes wait for it or have ended';
    if (stream) {
      const history = remember(`stream:${name}`, now, { kbps: stream.bitrateKbps, fps: stream.video?.frameRate });
      chart(card.querySelector('.chart-in'), history, 'kbps', 'kb/s');
      chart(card.querySelector('.chart-fps'), history, 'fps', 'fps');
    }
    const pushes = view.pushes.filter((p) => p.sourceStreamName === name);
    for (const row of card.querySelectorAll('.push'))
      if (!pushes.some((p) => p.mediaSessionId === row.dataset.id)) row.remove();
    for (const push of pushes) {
      const row = pushRow(card, push);
      const last = previous.get(push.mediaSessionId);
      const bytes = push.counters?.bytesSent ?? 0;
      const kbps = last && now > last.at ? Math.round(((bytes - last.bytes) * 8) / (now - last.at)) : undefined;
      previous.set(push.mediaSessionId, { bytes, at: now });
      row.dataset.muted = String(push.muted);
      const picture = push.aspect
        ? `${push.aspect} ${push.width}×${push.height}`
        : push.layer
          ? `${push.layer} layer ${push.width}×${push.height}`
          : '';
      row.querySelector('.target').textContent = picture ? `${push.rtmpUrl} (${picture})` : push.rtmpUrl;
      row.querySelector('.state').textContent = push.state;
      row.querySelector('.state').dataset.state = push.state;
      // What the platform's dashboard would say, measured on what was sent (none until 5 s were).
      row.querySelector('.health').textContent = push.health?.status ?? '';
      row.querySelector('.health').dataset.health = push.health?.status ?? '';
      row.querySelector('.health-issues').textContent = push.health?.issues.join('; ') ?? '';
      row.querySelector('.uptime').textContent = duration(now - Date.parse(push.createdAt));
      row.querySelector('.bitrate').textContent = kbps === undefined ? '…' : `${kbps} kb/s`;
      row.querySelector('.lag').textContent = `${push.counters?.lagMs ?? 0} ms`;
      row.querySelector('.reconnects').textContent = String(push.counters?.reconnects ?? 0);
      const history = remember(`push:${push.mediaSessionId}`, now, {
        kbps,
        lag: push.counters?.lagMs,
        reconnects: push.counters?.reconnects ?? 0,
      });
      const reconnected = (before, after) => after.reconnects > before.reconnects;
      chart(row.querySelector('.chart-bitrate'), history, 'kbps', 'kb/s', reconnected);
      chart(row.querySelector('.chart-lag'), history, 'lag', 'ms', reconnected);
      row.querySelector('.error').textContent = push.lastError ?? '';
      row.querySelector('.mute').textContent = push.muted ? 'Unmute' : 'Mute';
      row.querySelector('.play').textContent = push.soundEnabled ? 'Playing…' : 'Play';
      const ended = push.state === 'failed' || push.state === 'stopped';
      for (const button of row.querySelectorAll('button, select')) button.disabled = ended;
    }
  }
  const mixers = view.mixers?.length ? `, ${view.mixers.length} mixers` : '';
  $('summary').textContent =
    `${view.streams.length} streams publishing, ${view.pushes.length} pushes (${view.pushes.filter((p) => p.state === 'running').length} running)${mixers} · ${new Date(view.at).toLocaleTimeString()}`;
}

function logEvent(event) {
  const item = document.createElement('li');
  const what = event.mediaSessionId ? `${event.stream} → ${event.destination}` : event.stream;
  item.textContent = `${new Date().toLocaleTimeString()}${event.node ? ` [${event.node}]` : ''} ${event.type} ${what}${event.file ? ` ${event.file}` : ''}${event.reason ? `: ${event.reason}` : ''}`;
  $('events').prepend(item);
  while ($('events').children.length > 100) $('events').lastChild.remove();
  if (event.type.startsWith('recording.')) void loadRecordings();
}

const size = (bytes) => (bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MB` : `${Math.ceil(bytes / 1024)} KB`);

/** The recordings on the gateway's disk, with a download link each (fetched with the key, saved from a blob). */
async function loadRecordings() {
  const response = await fetch('/rest-api/recording/find_all', { method: 'POST', headers: headers(), body: '{}' });
  const recordings = response.ok ? await response.json() : [];
  $('noRecordings').hidden = recordings.length > 0;
  $('recordingsWrap').hidden = recordings.length === 0;
  $('recordings').replaceChildren(
    ...recordings.map((r) => {
      const row = document.createElement('tr');
      const cells = [
        r.fileName,
        r.streamName,
        new Date(r.startedAt).toLocaleString(),
        r.durationMs === null ? '' : duration(r.durationMs),
        size(r.size),
        r.state,
      ];
      for (const text of cells) row.insertCell().textContent = text;
      const actions = row.insertCell();
      const download = document.createElement('a');
      download.textContent = 'Download';
      download.href = `/rest-api/recording/download/${encodeURIComponent(r.fileName)}`;
      download.addEventListener('click', async (event) => {
        event.preventDefault();
        const file = await fetch(download.href, { headers: headers() });
        if (!file.ok) return tell(`download: ${file.status} ${file.statusText}`);
        const link = Object.assign(document.createElement('a'), {
          href: URL.createObjectURL(await file.blob()),
          download: r.fileName,
        });
        link.click();
        setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
      });
      const remove = Object.assign(document.createElement('button'), {
        type: 'button',
        textContent: 'Delete',
        disabled: r.state === 'recording',
      });
      remove.addEventListener(
        'click',
        async () => (await command('/rest-api/recording/delete', { fileName: r.fileName })) && loadRecordings(),
      );
      actions.append(download, ' ', remove);
      return row;
    }),
  );
}

/** Follows the gateway's events until the connection ends, then again after 2 s. */
async function follow() {
  try {
    const response = await fetch('/rest-api/console/events', { headers: headers() });
    if (response.status === 401) return askKey();
    if (!response.ok || !response.body) throw new Error(`${response.status}`);
    $('keyForm').hidden = true;
    connection('Live updates', 'live');
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const type = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data === undefined) continue;
        if (type === 'view') render(JSON.parse(data));
        else if (type === 'event') logEvent(JSON.parse(data));
      }
    }
  } catch {
    // The gateway went away: shown below, tried again.
  }
  connection('Disconnected; reconnecting…', 'warn');
  setTimeout(follow, 2000);
}

$('keyForm').addEventListener('submit', async (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $('apiKey').value.trim());
  $('apiKey').value = '';
  await loadSounds();
  void loadRecordings();
  follow();
});

async function loadSounds() {
  const response = await fetch('/rest-api/console/sounds', { method: 'POST', headers: headers(), body: '{}' });
  if (response.ok) sounds = await response.json();
}

await loadSounds();
void loadRecordings();
follow();
