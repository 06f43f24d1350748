// The operator console: every stream and push, as the gateway tells it over server-sent events
// (read with fetch, so the control API key goes in a header, never in a URL), and the REST API's
// commands on them.
const $ = (id) => document.getElementById(id);
const KEY = 'gateway-console-key';
let sounds = [];
/** bytesSent and time of each push in the last view, for its bitrate. */
const previous = new Map();

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
  return s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
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
  card.querySelector('.start').addEventListener('submit', async (event) => {
    event.preventDefault();
    const rtmpUrl = card.querySelector('.url').value.trim();
    const button = card.querySelector('.start button');
    button.disabled = true;
    const started = await command('/rest-api/push/startup', { streamName: name, rtmpUrl, rtmpTransponderFullUrl: card.querySelector('.full').checked });
    button.disabled = false;
    if (started) card.querySelector('.url').value = '';
  });
  $('streams').append(card);
  return card;
}

function pushRow(card, push) {
  const id = push.mediaSessionId;
  let row = card.querySelector(`.push[data-id="${id}"]`);
  if (row) return row;
  row = $('push-row').content.firstElementChild.cloneNode(true);
  row.dataset.id = id;
  row.querySelector('.mute').addEventListener('click', () => command(`/rest-api/push/${row.dataset.muted === 'true' ? 'unmute' : 'mute'}`, { mediaSessionId: id }));
  row.querySelector('.play').addEventListener('click', () => {
    const soundFile = row.querySelector('.sound').value;
    if (soundFile) command('/rest-api/push/sound_on', { mediaSessionId: id, soundFile, loop: false });
  });
  row.querySelector('.silence').addEventListener('click', () => command('/rest-api/push/sound_off', { mediaSessionId: id }));
  row.querySelector('.terminate').addEventListener('click', () => command('/rest-api/push/terminate', { mediaSessionId: id }));
  const select = row.querySelector('.sound');
  for (const name of sounds) select.append(new Option(name, name));
  card.querySelector('.pushes').append(row);
  return row;
}

function render(view) {
  const now = Date.parse(view.at);
  const names = new Set([...view.streams.map((s) => s.name), ...view.pushes.map((p) => p.sourceStreamName)]);
  for (const card of document.querySelectorAll('.stream')) if (!names.has(card.dataset.name)) card.remove();
  for (const name of [...names].sort()) {
    const card = streamCard(name);
    const stream = view.streams.find((s) => s.name === name);
    card.querySelector('.what').textContent = stream ? 'publishing' : 'not publishing';
    card.querySelector('.what').className = `badge what ${stream ? 'live' : ''}`;
    card.querySelector('.start button').disabled = !stream;
    card.querySelector('.snapshot').disabled = !stream;
    card.querySelector('.facts').textContent = stream
      ? [
          stream.video ? `${stream.video.codec} ${stream.video.width ?? '?'}×${stream.video.height ?? '?'} ${stream.video.frameRate ?? '?'} fps` : 'no video',
          stream.audio ? stream.audio.codec : 'no audio',
          `${stream.bitrateKbps} kb/s in`,
          `up ${duration(now - Date.parse(stream.publishingSince ?? stream.createdAt))}`,
          `from ${stream.clientAddress}`,
          `${stream.framesLost} frames lost`,
        ].join(' · ')
      : 'its pushes wait for it or have ended';
    const pushes = view.pushes.filter((p) => p.sourceStreamName === name);
    for (const row of card.querySelectorAll('.push')) if (!pushes.some((p) => p.mediaSessionId === row.dataset.id)) row.remove();
    for (const push of pushes) {
      const row = pushRow(card, push);
      const last = previous.get(push.mediaSessionId);
      const bytes = push.counters?.bytesSent ?? 0;
      const kbps = last && now > last.at ? Math.round(((bytes - last.bytes) * 8) / (now - last.at)) : undefined;
      previous.set(push.mediaSessionId, { bytes, at: now });
      row.dataset.muted = String(push.muted);
      row.querySelector('.target').textContent = push.rtmpUrl;
      row.querySelector('.state').textContent = push.state;
      row.querySelector('.state').dataset.state = push.state;
      row.querySelector('.uptime').textContent = duration(now - Date.parse(push.createdAt));
      row.querySelector('.bitrate').textContent = kbps === undefined ? '…' : `${kbps} kb/s`;
      row.querySelector('.reconnects').textContent = String(push.counters?.reconnects ?? 0);
      row.querySelector('.error').textContent = push.lastError ?? '';
      row.querySelector('.mute').textContent = push.muted ? 'Unmute' : 'Mute';
      row.querySelector('.play').textContent = push.soundEnabled ? 'Playing…' : 'Play';
      const ended = push.state === 'failed' || push.state === 'stopped';
      for (const button of row.querySelectorAll('button, select')) button.disabled = ended;
    }
  }
  $('summary').textContent = `${view.streams.length} streams publishing, ${view.pushes.length} pushes (${view.pushes.filter((p) => p.state === 'running').length} running) · ${new Date(view.at).toLocaleTimeString()}`;
}

function logEvent(event) {
  const item = document.createElement('li');
  const what = event.mediaSessionId ? `${event.stream} → ${event.destination}` : event.stream;
  item.textContent = `${new Date().toLocaleTimeString()} ${event.type} ${what}${event.reason ? `: ${event.reason}` : ''}`;
  $('events').prepend(item);
  while ($('events').children.length > 100) $('events').lastChild.remove();
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
  follow();
});

async function loadSounds() {
  const response = await fetch('/rest-api/console/sounds', { method: 'POST', headers: headers(), body: '{}' });
  if (response.ok) sounds = await response.json();
}

await loadSounds();
follow();
